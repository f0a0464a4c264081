"""``blazeear-edge evaluate``: COCO mAP of every runtime of an export (or one model file) on
labelled images (see :mod:`blazeear_edge.evaluate`)."""

from __future__ import annotations

HELP = ("mAP@0.5 and COCO mAP@[.5:.95] per runtime and format (fp32 vs int8, ONNX vs TFLite) "
        "on a COCO json or BlazeEar CSV, with an optional precision-recall plot")


def add_arguments(p):
    p.add_argument("target", metavar="MODEL_OR_EXPORT_DIR",
                   help="an export folder (every runtime) or one model file: .onnx, .tflite, "
                        "a PyTorch checkpoint, or 'mediapipe'")
    p.add_argument("--data", required=True, metavar="COCO_JSON|CSV",
                   help="ground truth: a COCO json or a BlazeEar CSV (image_path,x1,y1,w,h,...)")
    p.add_argument("--images-root", default=None, metavar="DIR",
                   help="where the image paths of the json / CSV are relative to (default: its "
                        "folder, then its images/ sub-folder)")
    p.add_argument("--runtimes", default=None, metavar="LIST",
                   help="comma-separated subset of pytorch, fp32_onnx, int8_onnx, fp32_tflite, "
                        "int8_tflite (default: all the export has)")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help="evaluate the first N images only")
    p.add_argument("--score-thresh", type=float, default=None, metavar="S",
                   help="decode threshold (default 0.05: low, so the precision-recall curve "
                        "is traced; the deployment threshold is in the manifest)")
    p.add_argument("--category", default=None,
                   help="COCO category name or id to score (needed when the json has several)")
    p.add_argument("--anchors", default=None,
                   help="for a single model file: unit | ear | FILE.npy (default: unit; ear for "
                        "BatchNorm v2 checkpoints)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="the PyTorch checkpoint of an export, when the one in its manifest moved")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="write the precision-recall plot to this PNG (default: no plot)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text table (default) or JSON on stdout")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the JSON report here")


def run(args) -> int:
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..evaluate import EVAL_SCORE_THRESH, evaluate

    rts = [r.strip() for r in args.runtimes.split(",") if r.strip()] if args.runtimes else None
    thresh = EVAL_SCORE_THRESH if args.score_thresh is None else args.score_thresh
    rep = evaluate(args.target, args.data, images_root=args.images_root, runtimes=rts,
                   score_thresh=thresh, count=args.count, anchors=args.anchors,
                   category=args.category, weights=args.weights,
                   plot=args.plot, progress=lambda m: print(m, file=sys.stderr, flush=True))
    if rep.plot:
        print(f"wrote {rep.plot}", file=sys.stderr)
    from . import emit_report

    emit_report(rep, args.format, args.json)
    return 1 if any(r.error for r in rep.rows) else 0
