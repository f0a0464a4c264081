"""Issue 15's figures on real photos: camera bytes vs host path, ST app bindings, score ties.

    PYTHONPATH=. python benchmarks/st_app_figures.py EXPORT_DIR [EXPORT_DIR ...] \
        [--images ../shared/data/ear210/images]

Per export (its int8 TFLite), on every image of the folder (letterboxed to 128):

* camera: the int8 outputs when the raw camera bytes go in as ST's app feeds them (a uint8 input
  gets the bytes; a float32 input is what ``stedgeai --input-data-type uint8`` makes of its
  QUANTIZE: int8 q = p - 128 at the same scale), against the host path (``normalize`` +
  ``runtimes.run_tflite``): images bit-identical, max int8 difference, and images whose
  detections differ at the ST profile and at the manifest's decode;
* ST app: :func:`blazeear_edge.stapp.st_reference_decode` (a re-implementation of ST's
  post-processing from its documented behaviour, NOT ST's library) for both bindings (v1.0.0 by
  index, v1.1.0 by size) against the host decode at the ST profile: frames equal (same count,
  boxes within 1e-4 of the 128 input, same scores);
* ties: images where two candidates share the top score (or any score) at the ST threshold, and
  images whose displayed detections change when equal scores are ordered the other way.
* score step (logit per int8 step) of the score outputs;
* int8 accuracy: host int8 decode against the PyTorch fp32 model (the checkpoint named in the
  manifest) at the ST profile and at 0.5 / IoU 0.3 weighted (MediaPipe): matched / reference /
  extra detections (IoU >= 0.5), mean IoU, max score delta.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from blazeear_edge.manifest import load_manifest
from blazeear_edge.metrics import MatchStats, match_detections
from blazeear_edge.postprocess import SPLIT_OUTPUTS, DecodeConfig
from blazeear_edge.postprocess import decode_outputs
from blazeear_edge.preprocess import letterbox, list_images, load_image, normalize
from blazeear_edge.runtimes import run_tflite, tflite_interpreter, tflite_output_map
from blazeear_edge.stapp import ST_APP_DECODE, st_reference_decode


def board_outputs(it, canvas: np.ndarray) -> list[np.ndarray]:
    """Output buffers in the file's order for raw camera bytes fed as ST's app feeds them."""
    d = it.get_input_details()[0]
    p = canvas[None].astype(np.int64)
    if d["dtype"] == np.uint8:
        x = p.astype(np.uint8)
    else:  # float32 input + QUANTIZE: stedgeai's uint8 input makes int8 q = p - 128
        s, z = _quantize_op_params(it)
        x = ((p - 128 - z) * np.float64(s)).astype(np.float32)
    it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(o["index"]).copy() for o in it.get_output_details()]


def _quantize_op_params(it) -> tuple[float, int]:
    """(scale, zero point) of the int8 tensor the input QUANTIZE writes."""
    op = next(o for o in it._get_ops_details() if o["op_name"] == "QUANTIZE")
    det = {t["index"]: t for t in it.get_tensor_details()}
    s, z = det[int(op["outputs"][0])]["quantization"]
    return float(s), int(z)


def _rows(det) -> np.ndarray:
    return np.concatenate([det.scores[:, None], det.boxes], axis=1).reshape(-1, 5)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= 1e-4))


def figures(export_dir: str, images: list[Path]) -> dict:
    man = load_manifest(export_dir)
    art = man.artifact("int8_tflite")
    path = man.artifact_path("int8_tflite")
    specs = art.output_specs()
    anchors = man.anchors()
    cfg_man = man.decode_config()
    it = tflite_interpreter(path)
    outd = it.get_output_details()
    mapping = tflite_output_map(it, specs)  # tensor index -> spec name
    names = [mapping[o["index"]] for o in outd]
    quant = [o["quantization"] for o in outd]
    n = len(images)
    cam_same, cam_max, cam_st, cam_man = 0, 0, 0, 0
    bind_ok = {"index": 0, "size": 0}
    bind_err = {"index": "", "size": ""}
    top_ties, any_ties, tie_changes = 0, 0, 0
    acc = {"st_profile": MatchStats(), "mediapipe_0.5": MatchStats()}
    mp = DecodeConfig(score_thresh=0.5, iou_thresh=0.3, nms="weighted")
    ref_model = _reference_model(man)
    for img in images:
        canvas, _ = letterbox(load_image(img))
        host = run_tflite(path, normalize(canvas, "NHWC"), specs)[0]
        ref_out = _torch(ref_model, normalize(canvas))
        for key, cfg in (("st_profile", ST_APP_DECODE), ("mediapipe_0.5", mp)):
            acc[key] = acc[key].add(match_detections(
                decode_outputs(ref_out, anchors, cfg, SPLIT_OUTPUTS),
                decode_outputs(host, anchors, cfg, specs)))
        board = dict(zip(names, board_outputs(it, canvas)))
        diffs = [int(np.abs(host[k].astype(np.int32) - board[k].astype(np.int32)).max())
                 for k in names]
        cam_same += max(diffs) == 0
        cam_max = max(cam_max, max(diffs))
        for cfg, key in ((ST_APP_DECODE, "st"), (cfg_man, "man")):
            a = _rows(decode_outputs(host, anchors, cfg, specs))
            b = _rows(decode_outputs(board, anchors, cfg, specs))
            if not _same(a, b):
                if key == "st":
                    cam_st += 1
                else:
                    cam_man += 1
        ref = _rows(decode_outputs(board, anchors, ST_APP_DECODE, specs))
        bufs = [board[k] for k in names]
        for binding in ("index", "size"):
            try:
                got = st_reference_decode(bufs, quant, anchors, binding)
                bind_ok[binding] += _same(got, ref)
            except Exception as exc:  # noqa: BLE001 - a read past a buffer's end
                bind_err[binding] = str(exc)
        rev = st_reference_decode(bufs, quant, anchors, "size", tie="reverse")
        fwd = st_reference_decode(bufs, quant, anchors, "size")
        tie_changes += not _same(rev, fwd)
        # equal top scores among the candidates at the ST threshold
        sc = np.concatenate([(board[s.name].reshape(-1).astype(np.int32) - s.zero_point)
                             * np.float32(s.scale) for s in specs if s.kind == "scores"])
        cand = np.sort(sc[sc >= np.log(0.8 / 0.2)])[::-1]
        top_ties += cand.size >= 2 and cand[0] == cand[1]
        any_ties += cand.size >= 2 and bool(np.any(cand[1:] == cand[:-1]))
    steps = {s.name: round(float(s.scale), 4) for s in specs if s.kind == "scores"}
    return {"export": str(export_dir), "images": n,
            "input": {k: art.input.to_dict().get(k) for k in ("dtype", "scale", "zero_point")},
            "outputs_file_order": names, "score_step_logit": steps,
            "camera_bit_identical": cam_same, "camera_max_int8_diff": cam_max,
            "camera_detections_differ_st_profile": cam_st,
            "camera_detections_differ_manifest_decode": cam_man,
            "st_app_v1.0.0_index_binding_equal": bind_ok["index"],
            "st_app_v1.0.0_error": bind_err["index"] or None,
            "st_app_v1.1.0_size_binding_equal": bind_ok["size"],
            "images_equal_top_score_at_0.8": int(top_ties),
            "images_any_equal_scores_at_0.8": int(any_ties),
            "images_changed_by_tie_order": int(tie_changes),
            "int8_vs_fp32": {k: {kk: (round(vv, 4) if isinstance(vv, float) else vv)
                                 for kk, vv in v.to_dict().items()} for k, v in acc.items()}}


def _reference_model(man):
    from blazeear_edge.weights import load_model

    m = load_model(man.model.source if Path(str(man.model.source)).exists() else "mediapipe",
                   fold=True)
    return m.eval()


def _torch(model, nchw):
    import torch

    with torch.no_grad():
        return [o.numpy() for o in model(torch.from_numpy(nchw))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("exports", nargs="+")
    ap.add_argument("--images", default=str(Path(__file__).resolve().parents[2] / "shared"
                                            / "data" / "ear210" / "images"))
    args = ap.parse_args(argv)
    images = list_images(args.images)
    if not images:
        print(f"no images in {args.images}", file=sys.stderr)
        return 2
    for e in args.exports:
        print(json.dumps(figures(e, images), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
