"""``blazeear-edge bench``: the table a user pastes into a report (host numbers measured here,
device numbers from ST's own files, ST's published reference row)."""

from __future__ import annotations

HELP = ("benchmark an export: size, linter estimates, host latency, SQNR/parity (mAP with --data) "
        "and STM32N6 device numbers from ST's reports, as Markdown/CSV/JSON + plots")


def add_arguments(p):
    p.add_argument("export_dir", metavar="EXPORT_DIR", help="a folder written by 'export'")
    p.add_argument("--data", metavar="COCO_JSON|CSV", default=None,
                   help="labelled images: adds mAP@0.5 per artifact")
    p.add_argument("--images-root", default=None, help="root for the --data image paths")
    p.add_argument("--st-report", nargs="+", action="extend", default=[], metavar="[KEY=]FILE",
                   help="ST's network_c_info.json, network_generate/analyze_report.txt or a "
                        "Developer Cloud result JSON: fills the N6 columns of the artifact it "
                        "names (KEY = int8_tflite, ...; default: the int8 TFLite)")
    p.add_argument("--runs", type=int, default=50,
                   help="timed inferences per artifact after warm-up (default 50)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where bench.md/.csv/.json and the plots go (default EXPORT_DIR/bench)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    import os
    import sys
    from pathlib import Path

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ..bench import run_bench

    out = Path(args.out) if args.out else Path(args.export_dir) / "bench"
    res = run_bench(args.export_dir, data=args.data, st_reports=args.st_report, runs=args.runs,
                    out_dir=out, progress=not args.quiet, images_root=args.images_root)
    print(res.markdown(heading=None), end="")
    print("\nwritten: " + ", ".join(str(p) for p in res.files.values()), file=sys.stderr)
    failed = [r for r in res.rows if r.status.startswith("failed")]
    return 1 if failed else 0
