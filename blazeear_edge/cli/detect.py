"""``blazeear-edge detect``: run the PyTorch model + NumPy decode on images."""

from __future__ import annotations

HELP = "detect faces/ears in images with a checkpoint (PyTorch model + NumPy decode)"


def add_arguments(p):
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (jpg, png, ...)")
    p.add_argument("--weights", default="mediapipe",
                   help="checkpoint: 'mediapipe' (default, bundled), a .pth state dict or "
                        "training checkpoint, or a .tflite file")
    p.add_argument("--anchors", default=None,
                   help="unit | ear | FILE.npy (default: ear for BatchNorm v2 checkpoints, "
                        "unit otherwise)")
    p.add_argument("--score-thresh", type=float, default=0.5, help="minimum score (default 0.5)")
    p.add_argument("--iou-thresh", type=float, default=0.3,
                   help="NMS IoU threshold (default 0.3)")
    p.add_argument("--nms", choices=["weighted", "hard"], default="weighted",
                   help="weighted (MediaPipe, default) or hard NMS")
    p.add_argument("--max-detections", type=int, default=0, help="cap per image (0 = none)")
    p.add_argument("--max-candidates", type=int, default=None, metavar="K",
                   help="top-K candidates by score entering NMS, as the board's decode does "
                        "(default 0 = no cap: the model's full decode); when it binds, the "
                        "output says on which images and what it changed")
    p.add_argument("--json", action="store_true", help="print one JSON list to stdout")
    p.add_argument("--draw", metavar="DIR", help="write PNGs with boxes and keypoints here")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from ..detect import Detector
    from ..errors import BlazeEarError
    from ..postprocess import DecodeConfig

    if not 0.0 <= args.score_thresh <= 1.0:
        raise BlazeEarError(f"--score-thresh must be within [0, 1], got {args.score_thresh}")
    if not 0.0 <= args.iou_thresh <= 1.0:
        raise BlazeEarError(f"--iou-thresh must be within [0, 1], got {args.iou_thresh}")
    if args.max_candidates is not None and args.max_candidates < 0:
        raise BlazeEarError(f"--max-candidates must be 0 (no cap) or more, got "
                            f"{args.max_candidates}")
    cfg = DecodeConfig(score_thresh=args.score_thresh, iou_thresh=args.iou_thresh, nms=args.nms,
                       max_detections=max(0, args.max_detections),
                       max_candidates=args.max_candidates or 0)
    det = Detector(args.weights, args.anchors, cfg)
    log = sys.stderr
    print(f"loaded {det.info.description} from {det.info.source}; anchors: {det.anchors.kind}",
          file=log)
    for note in det.info.notes:
        print(f"note: {note}", file=log)
    results = [det.detect_file(p) for p in args.images]
    cap = None
    if cfg.max_candidates:
        from ..capreport import CapStats

        cap = CapStats(cfg.max_candidates)
        for r in results:
            cap.add(r.detections, r.uncapped, r.image)
    if args.draw:
        from ..draw import draw_detections, save_png
        from ..preprocess import load_image

        out = Path(args.draw)
        for r in results:
            img = draw_detections(load_image(r.image), r.detections)
            dst = save_png(img, out / (Path(r.image).stem + "_det.png"))
            print(f"wrote {dst}", file=log)
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in results:
            bound = ""
            if r.uncapped is not None:
                c = r.cap_dict()
                bound = (f" [candidate cap {c['max_candidates']} bound: {c['dropped']} of "
                         f"{c['candidates']} candidates dropped, {c['detections_uncapped']} "
                         f"detection(s) without the cap]")
            print(f"{r.image} ({r.width}x{r.height}): {len(r.detections)} detection(s){bound}")
            for d in r.detections.to_list():
                b = ", ".join(f"{v:.1f}" for v in d["box"])
                print(f"  score {d['score']:.3f}  box [{b}]")
    if cap is not None:  # a cap was asked for: say whether it bound (stderr beside JSON)
        print(("warning: " if cap.changed else "") + cap.sentence(),
              file=log if args.json else sys.stdout)
    return 0
