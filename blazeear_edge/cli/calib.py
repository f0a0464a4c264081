"""``blazeear-edge calib``: build a calibration set (.npz) from images, a CSV or a COCO json."""

from __future__ import annotations

HELP = "build a pre-processed calibration set (.npz, NCHW + NHWC + provenance)"


def add_arguments(p):
    p.add_argument("source", nargs="?", default="builtin",
                   help="a folder of images, a BlazeEar CSV, a COCO json, or 'builtin' (default)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to write the set")
    p.add_argument("--count", type=int, default=200, help="images to use (default 200)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--crop-boxes", action="store_true",
                   help="also add crops around labelled boxes (CSV / COCO)")
    p.add_argument("--images-root", default=None, help="root for CSV / COCO image paths")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..calib_data import build_calibration, save_npz

    s = build_calibration(args.source, args.count, seed=args.seed, crop_boxes=args.crop_boxes,
                          images_root=args.images_root, progress=not args.quiet)
    path = save_npz(s, args.out)
    p = s.provenance
    print(f"wrote {path}: {len(s)} images from {p['source']} ({p['kind']}), "
          f"{p['skipped']} unreadable skipped; arrays nchw {tuple(s.nchw.shape)} and "
          f"nhwc {tuple(s.nhwc.shape)}, values in [-1, 1]")
    if p.get("default_used"):
        print(f"note: {p['note']}")
    return 0
