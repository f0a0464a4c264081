"""Candidates per real frame: how many anchors reach NMS (score >= threshold, valid box).

This is the figure the decode's candidate cap (``DecodeConfig.max_candidates``, the manifest's
``decode.max_candidates``) is chosen from: the default cap must never bind on real frames, fp32
or int8. It runs the PyTorch model (fp32) and, given an export folder, its int8 artifacts
(TFLite int8 as they are; ONNX QDQ outputs re-quantised like the C harness does) on real photos:
the ear210 set beside the repository (``../shared/data/ear210/images``) when present, else the
built-in hold-out images, and prints the distribution per model and whether the cap binds.

    python benchmarks/bench_candidates.py [EXPORT_DIR] [--images SRC] [--thresh 0.5] [--json F]

Counted with the step-by-step reference functions of ``blazeear_edge.postprocess`` (dequantise,
sigmoid, decode, drop invalid boxes), not the fast path the cap lives in.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

EAR210 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ear210" / "images"


def count_candidates(outputs, specs, anchors, cfg) -> int:
    from blazeear_edge.postprocess import decode_boxes, join_outputs, sigmoid_scores

    regs, logits = join_outputs(outputs, specs)
    keep = sigmoid_scores(logits, cfg.score_clip) >= np.float32(cfg.score_thresh)
    boxes, kps = decode_boxes(regs[keep], anchors[keep], cfg)
    c = np.concatenate([boxes, kps.reshape(-1, 12)], axis=1)
    ok = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1]) & ~np.isnan(c).any(axis=1)
    return int(ok.sum())


def distribution(counts) -> dict:
    c = np.asarray(counts)
    return {"frames": int(c.size), "min": int(c.min()), "median": float(np.median(c)),
            "p90": float(np.percentile(c, 90)), "p99": float(np.percentile(c, 99)),
            "max": int(c.max()), "zero": int((c == 0).sum()),
            "histogram": {f"{lo}-{hi}": int(((c >= lo) & (c <= hi)).sum())
                          for lo, hi in ((0, 0), (1, 4), (5, 9), (10, 19), (20, 49),
                                         (50, 99), (100, 896))}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export_dir", nargs="?", default=None,
                    help="export folder (adds its int8 artifacts)")
    ap.add_argument("--images", default=None, help="image source (default: ear210 if present)")
    ap.add_argument("--thresh", type=float, default=None,
                    help="score threshold (default: the manifest's, else 0.5)")
    ap.add_argument("--json", default=None, help="also write the figures as JSON")
    a = ap.parse_args(argv)

    import torch

    from blazeear_edge.anchors import ssd_anchors
    from blazeear_edge.calib_data import builtin_holdout, load_images, resolve_source
    from blazeear_edge.harness import export_outputs, harness_model
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.postprocess import SPLIT_OUTPUTS, DecodeConfig
    from blazeear_edge.weights import load_model

    src = a.images or (str(EAR210) if EAR210.is_dir() else None)
    kind, samples = resolve_source(src)
    if kind == "builtin":
        samples = builtin_holdout(samples)
    imgs = load_images(samples, shuffle=False, source=str(src or "builtin"), kind=kind,
                       progress=False)
    what = f"{len(imgs.names)} images from {src or 'the built-in hold-out'}"
    manifest = load_manifest(a.export_dir) if a.export_dir else None
    cfg = manifest.decode_config() if manifest else DecodeConfig()
    if a.thresh is not None:
        cfg = DecodeConfig.from_dict(dict(cfg.to_dict(), score_thresh=a.thresh))
    anchors = manifest.anchors() if manifest else ssd_anchors()

    model = load_model()
    results = {}
    with torch.no_grad():
        fp32 = [[o.numpy() for o in model(torch.from_numpy(x[None]))] for x in imgs.nchw]
    results["fp32 PyTorch"] = [count_candidates(o, SPLIT_OUTPUTS, anchors, cfg) for o in fp32]
    if manifest:
        for art in ("int8_tflite", "int8_onnx"):
            if art not in manifest.data.get("artifacts", {}):
                continue
            hm = harness_model(manifest, artifact=art)
            outs = export_outputs(manifest, hm, imgs.nhwc, imgs.nchw)
            results[f"{art}"] = [count_candidates(o, hm.specs, anchors, cfg) for o in outs]

    cap = cfg.max_candidates
    print(f"candidates per frame (score >= {cfg.score_thresh}, valid box) on {what}; "
          f"cap max_candidates = {cap or 'none'}")
    summary = {}
    for name, counts in results.items():
        d = distribution(counts)
        d["binds"] = int(sum(c > cap for c in counts)) if cap else 0
        summary[name] = d
        hist = ", ".join(f"{k}: {v}" for k, v in d["histogram"].items() if v)
        print(f"  {name:14s} median {d['median']:g}, p90 {d['p90']:.0f}, p99 {d['p99']:.0f}, "
              f"max {d['max']} ({d['zero']} frames with none; {hist}); cap binds on "
              f"{d['binds']} frame(s)")
    if a.json:
        Path(a.json).write_text(json.dumps({"images": what, "score_thresh": cfg.score_thresh,
                                            "max_candidates": cap, "models": summary,
                                            "counts": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
