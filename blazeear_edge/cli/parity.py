"""``blazeear-edge parity``: every runtime of an export against the PyTorch model, the C decode
against the NumPy decode, and optionally a board's log against both (see
:mod:`blazeear_edge.parity`)."""

from __future__ import annotations

HELP = ("prove on the host that every runtime of an export (ONNX/TFLite fp32/int8, the C "
        "decode, a board's log) says what the PyTorch model says")


def add_arguments(p):
    from dataclasses import fields

    from ..compare import Tolerance

    p.add_argument("export_dir", metavar="EXPORT_DIR",
                   help="export folder with manifest.json (from 'blazeear-edge export')")
    p.add_argument("--images", default=None, metavar="SRC",
                   help="a folder, an image file, a BlazeEar CSV or a COCO json (default: the "
                        "built-in hold-out: astronaut + 40 LFW crops, never used for "
                        "calibration)")
    p.add_argument("--images-root", default=None, metavar="DIR",
                   help="root for CSV / COCO image paths")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help="use the first N images (default: all)")
    p.add_argument("--tolerances", default=None, metavar="FILE",
                   help='JSON {"fp32": {...}, "int8": {...}} overriding default limits ('
                        + ", ".join(f.name for f in fields(Tolerance)) + ")")
    p.add_argument("--device-log", default=None, metavar="FILE",
                   help="a board's (or QEMU's) log in the harness format: its frames must "
                        "equal the NumPy decode of the int8 outputs of the same images")
    p.add_argument("--draw", default=None, metavar="DIR",
                   help="write side-by-side PNGs (fp32 reference | int8) of the worst images")
    p.add_argument("--draw-count", type=int, default=8, metavar="N",
                   help="worst images drawn per int8 runtime (default 8)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="the PyTorch checkpoint, when the one named in the manifest moved")
    p.add_argument("--runtimes", default=None, metavar="LIST",
                   help="comma-separated subset of fp32_onnx, int8_onnx, fp32_tflite, "
                        "int8_tflite (default: all the export has; PyTorch is the reference)")
    p.add_argument("--no-c", action="store_true",
                   help="skip building and running the C post-processing on the host")
    p.add_argument("--no-noise-floor", action="store_true",
                   help="skip measuring the fp32 reference under camera-level pixel noise (the "
                        "'equivalent camera noise' of each int8 artifact)")
    p.add_argument("--format", choices=["text", "json"], default="text",
                   help="text table (default) or JSON on stdout")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the JSON report here")


def run(args) -> int:
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..errors import BlazeEarError
    from ..parity import load_tolerances, run_parity

    if args.count is not None and args.count <= 0:
        raise BlazeEarError(f"--count must be positive, got {args.count}")
    if args.draw_count < 0:
        raise BlazeEarError(f"--draw-count must be 0 or more, got {args.draw_count}")
    tol = load_tolerances(args.tolerances) if args.tolerances else None
    report = run_parity(args.export_dir, images=args.images, count=args.count, tolerances=tol,
                        device_log=args.device_log, draw_dir=args.draw,
                        images_root=args.images_root, weights=args.weights,
                        c_check=not args.no_c, draw_count=args.draw_count,
                        runtimes=[r.strip() for r in args.runtimes.split(",") if r.strip()]
                        if args.runtimes else None,
                        progress=lambda m: print(m, file=sys.stderr, flush=True),
                        noise_floor=not args.no_noise_floor)
    from . import emit_report

    emit_report(report, args.format, args.json)
    return 0 if report.ok else 1
