"""``blazeear-edge harness``: the C post-processing on the host and an emulated Cortex-M55,
compared with the NumPy decode on the export's int8 outputs of real images."""

from __future__ import annotations

HELP = ("build and run the C post-processing (host gcc + QEMU Cortex-M55) on an export's int8 "
        "outputs and prove it equal to the NumPy decode")


def add_arguments(p):
    p.add_argument("export_dir", metavar="EXPORT_DIR",
                   help="export folder with manifest.json (from 'blazeear-edge export --int8')")
    p.add_argument("--images", default=None, metavar="SRC",
                   help="images: a folder, an image file, a BlazeEar CSV or COCO json "
                        "(default: the built-in hold-out faces, astronaut + LFW crops)")
    p.add_argument("--count", type=int, default=8, help="real images to use (default 8)")
    p.add_argument("--artifact", default=None,
                   help="int8 artifact whose outputs to use (default int8_tflite, else int8_onnx)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--run", choices=["host", "m55", "all", "none"], default=None,
                     help="where to run (default all); none = only write the files")
    run.add_argument("--host", dest="run", action="store_const", const="host",
                     help="host only (gcc with AddressSanitizer + UBSan)")
    run.add_argument("--m55", dest="run", action="store_const", const="m55",
                     help="Cortex-M55 only (arm-none-eabi-gcc + QEMU mps3-an547)")
    run.add_argument("--all", dest="run", action="store_const", const="all",
                     help="host and Cortex-M55 (default)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write sources, generated headers, vectors, Makefile and logs here "
                        "(default: a temporary folder, removed unless --keep)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    p.add_argument("--no-synthetic", action="store_true",
                   help="leave out the hand-built cases (ties, zero area, crowds, edges, ...)")
    p.add_argument("--no-sanitize", action="store_true",
                   help="host build without AddressSanitizer / UBSan")
    p.add_argument("--images-root", default=None, help="root for CSV / COCO image paths")
    p.add_argument("--max-candidates", type=int, default=None, metavar="K",
                   help="candidate cap for the NumPy and C decode (top-K by score entering NMS; "
                        "0 = no cap; default: the manifest's decode.max_candidates)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write the per-vector results as JSON")


def run(args) -> int:
    import json
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    from ..errors import BlazeEarError
    from ..harness import (TARGETS, export_outputs, find_tools, format_report, harness_model,
                           make_vectors, prepare, run_harness, synthetic_vectors)
    from ..harness.build import require
    from ..manifest import load_manifest

    if args.count is not None and args.count < 0:
        raise BlazeEarError(f"--count must be 0 or more, got {args.count}")
    mode = args.run or "all"
    targets = {"host": ("host",), "m55": ("m55",), "all": TARGETS, "none": ()}[mode]
    if mode == "none" and not args.out:
        raise BlazeEarError("--run none writes files only: give --out DIR")
    if args.max_candidates is not None and args.max_candidates < 0:
        raise BlazeEarError(f"--max-candidates must be 0 (no cap) or more, got "
                            f"{args.max_candidates}")
    manifest = load_manifest(args.export_dir)
    model = harness_model(manifest, artifact=args.artifact)
    if args.max_candidates is not None:
        from dataclasses import replace

        model = replace(model, config=replace(model.config, max_candidates=args.max_candidates))
    tools = find_tools()
    for t in targets:  # before the slow steps
        require(tools, t)
    log = sys.stderr

    vectors = []
    if args.count:
        from ..calib_data import evaluation_images

        imgs, _ = evaluation_images(args.images, args.count, args.images_root,
                                    desc="harness images")
        print(f"running {manifest.artifact_path(model.artifact).name} ({model.artifact}) on "
              f"{len(imgs)} image(s) ...", file=log)
        outs = export_outputs(manifest, model, imgs.nhwc, imgs.nchw)
        vectors += make_vectors(model, outs, names=imgs.names, letterboxes=imgs.letterboxes,
                                source=model.artifact)
    if not args.no_synthetic:
        vectors += synthetic_vectors(model)
    if not vectors:
        raise BlazeEarError("no test vectors: --count 0 with --no-synthetic")

    tmp = None
    out = Path(args.out) if args.out else None
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="blazeear-harness-"))
        out = tmp
    try:
        if not targets:
            prepare(out, model, vectors)
            print(f"wrote {len(vectors)} vector(s), sources and Makefile to {out}")
            return 0
        print(f"building and running on {', '.join(targets)} ({len(vectors)} vectors) ...",
              file=log)
        report = run_harness(model, vectors, out, targets, sanitize=not args.no_sanitize,
                             tools=tools)
        text = format_report(report)
        if tmp is not None and not args.keep:  # the folder goes away below
            text = text.rsplit("\nfiles: ", 1)[0]
        print(text)
        if args.json:
            from ..harness import cap_summary

            cap = cap_summary(report.model, report.vectors)
            Path(args.json).write_text(json.dumps(
                {**{t: [r.to_dict() for r in rs] for t, rs in report.results.items()},
                 **({"candidate_cap": cap.to_dict()} if cap is not None else {})},
                indent=1, default=float) + "\n")
        return 0 if report.ok else 1
    finally:
        if tmp is not None:
            if args.keep:
                print(f"kept {tmp}", file=log)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
