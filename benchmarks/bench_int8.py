"""Int8 fidelity on real photos: every artifact of ``export --int8``, measured on photos that
calibration never saw, over several calibration draws, per quantisation method.

    python benchmarks/bench_int8.py [--data ../shared/data/ear210] [--draws 5]
        [--methods nearest,adaround] [--calibs real,builtin] [--models face,ear] [--write-readme]

Data (``--data``, default ``../shared/data/ear210`` beside the repository): ``val_coco.json``
(18 photos) is the calibration split, ``train_coco.json`` (77 photos) the measurement split, both
full-size photos letterboxed as ``detect`` does. A draw is a seeded subset of the calibration
split (``--draw-size``, default 15 of 18) for ``real``, or a seeded subset of the built-in set
(``--builtin-count`` images) for ``builtin``; every method is run on the same draws, so method
differences are paired.

Per draw and method the script calls the public ``export(ExportConfig(..., int8=True))`` and runs
the int8 ONNX and int8 TFLite it wrote on the measurement split:

* AP50 and AP@[.5:.95] (pycocotools, ``evaluate.coco_metrics``): for the face model (default
  MediaPipe weights) against the fp32 PyTorch model's own detections at the deployment threshold
  (0.5); for the ear model (``--ear-weights``, the upstream BlazeEar checkpoint) against the COCO
  ear boxes. Detections are decoded at 0.05 (as ``evaluate`` does) and mapped to image pixels.
* detection parity against fp32 PyTorch at 0.5 (``metrics.match_detections``, IoU 0.5): recall
  (matched / fp32), precision (matched / int8), extra detections, mean IoU, max score and
  keypoint error (pixels of the 128 input);
* per-output SQNR over relevant anchors (fp32 score >= 0.05, ``parity.tensor_stats``), the worst.

fp32 outputs are computed once per model; per-run results are cached as JSON under ``--cache``
(keyed by model, calibration, draw and method), so adding a method re-runs only that method.
``--write-readme`` regenerates the table between the markers in ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
from _common import cpu_name  # noqa: E402

SHARED = REPO.parent / "shared" / "data"

#: method name -> ExportConfig keyword arguments (fields missing from ExportConfig are an error).
METHODS = {
    "nearest": {"weight_rounding": "nearest", "bias_correction": False, "qat_steps": 0},
    "bias": {"weight_rounding": "nearest", "bias_correction": True, "qat_steps": 0},
    "adaround500": {"weight_rounding": "adaround", "rounding_iterations": 500,
                    "bias_correction": False, "qat_steps": 0},
    "adaround": {"weight_rounding": "adaround", "rounding_iterations": 2000,
                 "bias_correction": False, "qat_steps": 0},
    "adaround+bias": {"weight_rounding": "adaround", "rounding_iterations": 2000,
                      "bias_correction": True, "qat_steps": 0},
    "adaround10k": {"weight_rounding": "adaround", "rounding_iterations": 10000,
                    "bias_correction": False, "qat_steps": 0},
    # the default export --int8 (main() checks qat_steps against quantize.qat.QAT_DEFAULT)
    "adaround+qat150": {"weight_rounding": "adaround", "rounding_iterations": 2000,
                        "qat_steps": 150},
    "adaround+qat300": {"weight_rounding": "adaround", "rounding_iterations": 2000,
                        "qat_steps": 300},
    # export --thorough (main() checks qat_steps against quantize.qat.QAT_THOROUGH)
    "thorough": {"weight_rounding": "adaround", "rounding_iterations": 2000,
                 "qat_steps": 600},
    # score outputs on the ST application's int8 range -4,6 (0.039 logit per level) instead of
    # +-16 (0.1255): measured, not adopted (docs/int8.md)
    "adaround-s46": {"weight_rounding": "adaround", "rounding_iterations": 2000,
                     "score_range": (-4.0, 6.0), "qat_steps": 0},
    "adaround+qat150-s46": {"weight_rounding": "adaround", "rounding_iterations": 2000,
                            "qat_steps": 150, "score_range": (-4.0, 6.0)},
    "percentile": {"weight_rounding": "nearest", "bias_correction": False,
                   "calib_method": "percentile", "qat_steps": 0},
    "default": {},
}


def _config_kwargs(method: str) -> dict:
    from blazeear_edge.export import ExportConfig

    kw = dict(METHODS[method])
    fields = ExportConfig.__dataclass_fields__
    # "nearest" before the rounding options existed is the same export (today's default)
    if method == "nearest" and "weight_rounding" not in fields:
        kw = {}
    bad = [k for k in kw if k not in fields]
    if bad:
        raise SystemExit(f"method {method}: ExportConfig has no field(s) {', '.join(bad)}")
    return kw


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def _coco_images(path: Path):
    from blazeear_edge.calib_data import coco_samples

    return coco_samples(path)


def load_eval(data: Path):
    """The measurement split, letterboxed (kept) as ``detect`` does."""
    from blazeear_edge.calib_data import load_images
    from blazeear_edge.evaluate import load_ground_truth

    gt = load_ground_truth(data / "train_coco.json")
    from blazeear_edge.calib_data import Sample

    ids = gt.image_ids
    ims = load_images([Sample(str(i), path=gt.paths[i]) for i in ids], shuffle=False,
                      progress=False, source="ear210 train", kind="coco")
    by_name = {str(i): i for i in ids}
    img_ids = [by_name[n] for n in ims.names]
    return gt, ims, img_ids


def calib_draw(kind: str, draw: int, args, workdir: Path) -> str:
    """A calibration source for ``ExportConfig.calib``: an .npz of the draw's images."""
    from blazeear_edge.calib_data import build_calibration, load_images, save_npz

    path = workdir / f"calib_{kind}_{draw}.npz"
    if path.exists():
        return str(path)
    if kind == "real":
        samples = _coco_images(args.data / "val_coco.json")
        rng = np.random.default_rng(1000 + draw)
        pick = [samples[int(i)] for i in rng.permutation(len(samples))[:args.draw_size]]
        ims = load_images(pick, shuffle=False, progress=False, source="ear210 val draw",
                          kind="coco")
    elif kind == "builtin-lfw":  # the built-in set before the composites (scenes + LFW crops)
        from blazeear_edge.calib_data import builtin_holdout, builtin_samples

        samples = builtin_samples(composites=False)
        held = {s.name for s in builtin_holdout(samples)}
        ims = load_images([s for s in samples if s.name not in held], count=args.builtin_count,
                          seed=draw, progress=False, source="builtin-lfw", kind="builtin")
    else:
        ims = build_calibration(None, args.builtin_count, seed=draw, progress=False)
    save_npz(ims, path)
    return str(path)


# ---------------------------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------------------------
def _decode_all(raw, table, specs, ims, img_ids, thresh):
    from blazeear_edge.evaluate import to_coco_dets
    from blazeear_edge.postprocess import DecodeConfig, decode_outputs

    cfg = DecodeConfig(score_thresh=thresh)
    coco, dets128 = [], []
    for r, lb, iid in zip(raw, ims.letterboxes, img_ids):
        coco += to_coco_dets(decode_outputs(r, table, cfg, specs, letterbox=lb), iid,
                             lb.width, lb.height)
        dets128.append(decode_outputs(r, table, DecodeConfig(score_thresh=0.5), specs))
    return coco, dets128


class Reference:
    """fp32 PyTorch outputs, detections and the AP ground truth of one model."""

    def __init__(self, model_key: str, weights: str, gt, ims, img_ids):
        from blazeear_edge.anchors import resolve_anchors
        from blazeear_edge.runtimes import run_torch_batched
        from blazeear_edge.postprocess import SPLIT_OUTPUTS
        from blazeear_edge.weights import load_model

        model = load_model(weights, fold=True)
        model.set_output_clip(16.0, None)  # as the export's reference
        self.model = model.eval()
        self.table = resolve_anchors(None, model.info.default_anchors).table
        self.specs = list(SPLIT_OUTPUTS)
        self.raw = run_torch_batched(model.eval(), ims.nchw, self.specs)
        self.ims, self.img_ids = ims, img_ids
        coco, self.dets = _decode_all(self.raw, self.table, self.specs, ims, img_ids, 0.05)
        if model_key == "face":  # ground truth = fp32's own detections at the deployment 0.5
            anns = [dict(d, id=k + 1, category_id=1, area=d["bbox"][2] * d["bbox"][3],
                         iscrowd=0) for k, d in enumerate(c for c in coco if c["score"] >= 0.5)]
            self.gt = {"images": gt.coco["images"], "annotations": anns,
                       "categories": [{"id": 1, "name": "face"}]}
            self.gt_kind = "fp32 PyTorch detections (score >= 0.5)"
        else:
            self.gt = gt.coco
            self.gt_kind = "COCO ear boxes"
        self.fp32 = self.measure(self.raw, self.specs, self.specs)

    def with_pixel_noise(self, lsb: int, seed: int) -> dict:
        """The fp32 model itself on the same photos plus uniform integer noise of +-``lsb``
        camera levels (of 255) per pixel (``noise_floor.pixel_noise``): how far an unquantised
        model moves under sensor noise, the yardstick for the int8 rows."""
        from blazeear_edge.noise_floor import pixel_noise
        from blazeear_edge.runtimes import run_torch_batched

        noisy = pixel_noise(self.ims.nchw, lsb, seed)
        return self.measure(run_torch_batched(self.model, noisy, self.specs), self.specs,
                            self.specs)

    def measure(self, raw, specs, stat_specs) -> dict:
        from blazeear_edge.evaluate import coco_metrics
        from blazeear_edge.metrics import MatchStats, by_box_size, match_detections
        from blazeear_edge.compare import tensor_stats

        coco, dets = _decode_all(raw, self.table, specs, self.ims, self.img_ids, 0.05)
        ap = coco_metrics(self.gt, coco, self.img_ids)
        tot = MatchStats()
        for r, t in zip(self.dets, dets):
            tot = tot.add(match_detections(r, t))
        ts = tensor_stats(self.raw, raw, self.specs, stat_specs)
        sq = {t.name: t.sqnr_db_relevant for t in ts}
        finite = [v for v in sq.values() if v is not None]
        return {"ap50": ap.ap50, "ap": ap.ap, "ref": tot.ref, "test": tot.test,
                "matched": tot.matched, "extra": tot.extra,
                "recall": tot.matched / tot.ref if tot.ref else 1.0,
                "precision": tot.matched / tot.test if tot.test else 1.0,
                "mean_iou": tot.mean_iou if tot.matched else None,
                "max_score_delta": tot.max_score_delta,
                "max_kp_err_px": tot.max_keypoint_err_px,
                "sqnr_db": sq, "worst_sqnr_db": min(finite) if finite else None,
                "by_box_width": by_box_size(self.dets, dets)}


def run_export(model_key, weights, calib, method, out: Path) -> tuple[dict, float]:
    from blazeear_edge.export import ExportConfig, export

    # channel_pad: what "auto" picks (linter cost), given so each run skips the three lint runs
    cfg = ExportConfig(weights=weights, int8=True, calib=calib, out=str(out), progress=False,
                       channel_pad="concat", **_config_kwargs(method))
    t0 = time.perf_counter()
    res = export(cfg)
    return res.manifest, time.perf_counter() - t0


def measure_export(ref: Reference, out: Path, keys=("int8_onnx", "int8_tflite")) -> dict:
    from blazeear_edge.calib_data import ImageSet
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.runtimes import export_runtimes
    from blazeear_edge.postprocess import SPLIT_OUTPUTS

    man = load_manifest(out)
    rts, _ = export_runtimes(man, list(keys))
    res = {}
    ims = ImageSet(ref.ims.nchw, ref.ims.names, {})
    for rt in rts:
        raw = rt.run(ims)
        stat_specs = rt.specs if rt.fmt == "tflite" else list(SPLIT_OUTPUTS)
        res[rt.key] = ref.measure(raw, rt.specs, stat_specs)
    return res


# ---------------------------------------------------------------------------------------------
# table
# ---------------------------------------------------------------------------------------------
def _ms(vals, fmt="{:.3f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return fmt.format(vals[0])
    return (f"{fmt.format(statistics.mean(vals))} ± "
            f"{fmt.replace('+', '').format(statistics.stdev(vals))}")


def _row(cells: list, rows: list, f: dict) -> str:
    """One table row: the leading cells, then the figures of ``rows`` (one dict per draw)."""
    return "| " + " | ".join(cells[:5] + [
        _ms([r["ap50"] for r in rows]),
        _ms([r["ap50"] - f["ap50"] for r in rows], "{:+.3f}"),
        cells[5],
        _ms([r["ap"] for r in rows]),
        _ms([r["recall"] for r in rows]), _ms([r["precision"] for r in rows]),
        f"{_ms([r['extra'] for r in rows], '{:.1f}')} / {rows[0]['ref']}",
        _ms([r["mean_iou"] for r in rows]),
        _ms([r["max_score_delta"] for r in rows], "{:.2f}"),
        _ms([r["max_kp_err_px"] for r in rows], "{:.1f}"),
        _ms([r["worst_sqnr_db"] for r in rows], "{:.1f}"),
        cells[6]]) + " |"


#: (key, label, higher is better) of the figures compared with the fp32-under-noise yardstick
YARDSTICK = (("recall", "recall", True), ("precision", "precision", True),
             ("mean_iou", "mean IoU", True), ("ap", "AP@[.5:.95]", True),
             ("worst_sqnr_db", "worst SQNR dB", True), ("extra", "extra", False))


def _disturbance(rows: list):
    """The mean of measured rows (one per draw) as a ``noise_floor.Disturbance``."""
    from blazeear_edge.noise_floor import Disturbance

    def m(key):
        v = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(v)) if v else None
    return Disturbance(m("recall"), m("precision"), m("mean_iou"), m("worst_sqnr_db"))


def equivalent_noise(rows: list, by_lsb: dict) -> str:
    """The equivalent camera noise (``noise_floor.equivalent_level``) of the mean of ``rows``
    on the measured fp32 noise ladder ``{k: [rows per noise draw]}``, with the figures that set
    it: '±4 (IoU, SQNR)'."""
    from blazeear_edge.noise_floor import FIGURES, equivalent_level, fmt_level

    if not by_lsb:
        return "-"
    eq = equivalent_level(_disturbance(rows), {k: _disturbance(v) for k, v in by_lsb.items()})
    labels = {k: lab for k, lab, _ in FIGURES}
    return (fmt_level(eq).replace(" levels", "").replace(" level", "") + " ("
            + ", ".join(labels[k] for k in eq["limited_by"]) + ")")


def yardstick(results: dict, noise: dict, lsb: int = 2) -> list[str]:
    """Lines of a table: each int8 row's mean figures against the fp32 model's own under +-``lsb``
    camera levels of pixel noise (the means over the noise draws), and whether it is no worse
    (the restatement of issue 11's parity targets proposed at stop 19). Empty when that noise
    level was not measured."""
    if not any(lsb in by for by in (noise or {}).values()):
        return []
    head = ("| model | calib | method | format | " + " | ".join(lab for _, lab, _ in YARDSTICK)
            + " | no worse in | equivalent camera noise |")
    lines = [f"int8 against the fp32 model under ±{lsb} LSB pixel noise (each cell: int8 mean, "
             f"then the noise yardstick's; ✓ = no worse):", "", head,
             "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for (mk, ck, meth), draws in sorted(results.items()):
        ref_rows = (noise or {}).get(mk, {}).get(lsb)
        if not ref_rows:
            continue
        for fmt in ("int8_onnx", "int8_tflite"):
            rows = [d[fmt] for d in draws.values() if fmt in d]
            if not rows:
                continue
            cells, met = [], 0
            for key, _, higher in YARDSTICK:
                a = float(np.mean([r[key] for r in rows]))
                b = float(np.mean([r[key] for r in ref_rows]))
                ok = a >= b if higher else a <= b
                met += ok
                fmt_v = "{:.1f}" if key in ("worst_sqnr_db", "extra") else "{:.3f}"
                cells.append(f"{fmt_v.format(a)} vs {fmt_v.format(b)}{' ✓' if ok else ''}")
            eq = equivalent_noise(rows, noise.get(mk, {}))
            lines.append("| " + " | ".join([mk, ck, meth, fmt.replace("int8_", "int8 ")] + cells
                                           + [f"{met} of {len(YARDSTICK)}", eq]) + " |")
    return lines + [""]


def summarise(results: dict, fp32: dict, meta: dict, baseline: str = "nearest",
              noise: dict | None = None) -> str:
    lines = [f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores, shared); "
             f"calibration split: ear210 `val_coco.json` ({meta['draw_size']} of 18 photos per "
             f"draw) or the built-in set ({meta['builtin_count']} images per draw); measured on "
             f"ear210 `train_coco.json` ({meta['eval_images']} photos, never calibrated on). "
             "Each cell: mean ± sd over the draws (n in the row); Δ columns are paired "
             "differences against `" + baseline + "` on the same draws.", ""]
    head = ("| model | calib | method | n | format | AP50 | ΔAP50 vs fp32 | ΔAP50 vs " + baseline
            + " | "
            "AP@[.5:.95] | recall | precision | extra / fp32 det. | mean IoU | max score Δ | "
            "max kp err px | worst SQNR dB | export s |")
    lines += [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for (mk, ck, meth), draws in sorted(results.items(), key=lambda kv: (
            kv[0][0], kv[0][1], list(METHODS).index(kv[0][2]) if kv[0][2] in METHODS else 99)):
        base = results.get((mk, ck, baseline), {})
        f = fp32[mk]
        for fmt in ("int8_onnx", "int8_tflite"):
            rows = [d[fmt] for d in draws.values() if fmt in d]
            if not rows:
                continue
            paired = [draws[k][fmt]["ap50"] - base[k][fmt]["ap50"] for k in draws
                      if k in base and fmt in base[k] and fmt in draws[k]]
            lines.append(_row([mk, ck, meth, str(len(rows)), fmt.replace("int8_", "int8 "),
                               "-" if meth == baseline else _ms(paired, "{:+.3f}"),
                               _ms([d["seconds"] for d in draws.values()], "{:.0f}")],
                              rows, f))
    for mk, by_lsb in sorted((noise or {}).items()):
        for lsb, rows in sorted(by_lsb.items()):
            lines.append(_row([mk, "-", f"fp32 + ±{lsb} LSB pixel noise", str(len(rows)),
                               "fp32 torch", "-", "-"], rows, fp32[mk]))
    lines.append("")
    lines += yardstick(results, noise, 2)
    if noise:
        lines.append("- `fp32 + ±k LSB pixel noise` rows: the fp32 model itself on the same photos "
                     "with uniform integer noise of up to k camera levels (of 255) added to every "
                     "pixel, one row per k over independent noise draws: the change a camera's "
                     "sensor noise alone causes, as a yardstick for the int8 rows.")
    for mk, f in fp32.items():
        lines.append(f"- fp32 {mk}: AP50 {f['ap50']:.3f}, AP@[.5:.95] {f['ap']:.3f} against "
                     f"{f['gt_kind']}; {f['ref']} fp32 detections at 0.5 on the measured photos"
                     + (f"; fp32 ONNX / TFLite AP50 {f.get('onnx_ap50', float('nan')):.3f} / "
                        f"{f.get('tflite_ap50', float('nan')):.3f}" if "onnx_ap50" in f else "")
                     + ".")
    return "\n".join(lines)


def write_readme(text: str, path: Path = HERE / "README.md", block_name: str = "int8-table",
                 title: str = "Int8 on real photos") -> None:
    BEGIN, END = f"<!-- {block_name}:begin -->", f"<!-- {block_name}:end -->"
    src = path.read_text()
    block = f"{BEGIN}\n<!-- generated by benchmarks/bench_int8.py; do not edit by hand -->\n" \
            f"{text}\n{END}"
    if BEGIN in src and END in src:
        pre, rest = src.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        new = pre + block + post
    else:
        new = src.rstrip("\n") + f"\n\n## {title}\n\n" + block + "\n"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED / "ear210")
    ap.add_argument("--ear-weights", default=str(SHARED / "blazeear-upstream" /
                                                 "BlazeEar_best.pth"))
    ap.add_argument("--models", default="face,ear", help="face,ear")
    ap.add_argument("--calibs", default="real,builtin",
                    help="real (ear210 val draws), builtin (today's built-in set), builtin-lfw "
                         "(the built-in set before camera-like composites)")
    ap.add_argument("--methods", default="nearest,adaround",
                    help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--draws", type=int, default=5, help="calibration draws (default 5)")
    ap.add_argument("--draw-size", type=int, default=15, help="real photos per draw")
    ap.add_argument("--builtin-count", type=int, default=120, help="built-in images per draw")
    ap.add_argument("--cache", type=Path, default=HERE / ".int8_cache")
    ap.add_argument("--only-cached", action="store_true", help="table from the cache only")
    ap.add_argument("--baseline", default="nearest",
                    help="method the paired ΔAP50 column compares against (default nearest)")
    ap.add_argument("--noise-lsb", default="1,2,3,4,6,8",
                    help="also measure the fp32 model under +-k LSB pixel noise, for each k in "
                         "this comma list ('' = skip)")
    ap.add_argument("--noise-draws", type=int, default=3, help="noise draws per k (default 3)")
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--block", default="int8-table",
                    help="README block to (re)write: int8-table (the lever table) or "
                         "int8-qat-table (fine-tuning against AdaRound)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not (args.data / "train_coco.json").is_file():
        print(f"{args.data}: ear210 not found (train_coco.json / val_coco.json)", file=sys.stderr)
        return 2
    from blazeear_edge.quantize.qat import QAT_DEFAULT, QAT_THOROUGH

    if (METHODS["thorough"]["qat_steps"] != QAT_THOROUGH
            or METHODS["adaround+qat150"]["qat_steps"] != QAT_DEFAULT):
        print(f"METHODS['thorough'] / ['adaround+qat150'] are not export --thorough "
              f"({QAT_THOROUGH} steps) / the default export ({QAT_DEFAULT} steps)",
              file=sys.stderr)
        return 2
    methods = [m for m in args.methods.split(",") if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        print(f"--methods: unknown {', '.join(bad)}", file=sys.stderr)
        return 2
    models = {"face": "mediapipe", "ear": args.ear_weights}
    args.cache.mkdir(parents=True, exist_ok=True)
    gt, ims, img_ids = load_eval(args.data)
    results, fp32, noise = {}, {}, {}
    lsbs = [int(v) for v in args.noise_lsb.split(",") if v.strip()]
    with tempfile.TemporaryDirectory(prefix="bench_int8_") as td:
        work = Path(td)
        for mk in [m for m in args.models.split(",") if m]:
            if mk == "ear" and not Path(models["ear"]).is_file():
                print(f"skipping the ear model: {models['ear']} not found", file=sys.stderr)
                continue
            ref = Reference(mk, models[mk], gt, ims, img_ids)
            fp32[mk] = dict(ref.fp32, gt_kind=ref.gt_kind)
            for lsb in lsbs:
                noise.setdefault(mk, {})[lsb] = [ref.with_pixel_noise(lsb, 7000 + 100 * lsb + t)
                                                 for t in range(args.noise_draws)]
            fp_cache = args.cache / f"{mk}_fp32_artifacts.json"
            for ck in [c for c in args.calibs.split(",") if c]:
                for meth in methods:
                    for d in range(args.draws):
                        key = f"{mk}_{ck}_{meth}_{d}"
                        cf = args.cache / f"{key}.json"
                        if cf.exists():
                            r = json.loads(cf.read_text())
                        elif args.only_cached:
                            continue
                        else:
                            out = work / key
                            calib = calib_draw(ck, d, args, work)
                            _, sec = run_export(mk, models[mk], calib, meth, out)
                            keys = ["int8_onnx", "int8_tflite"]
                            if not fp_cache.exists():
                                keys += ["fp32_onnx", "fp32_tflite"]
                            r = measure_export(ref, out, keys)
                            if not fp_cache.exists():
                                fp_cache.write_text(json.dumps(
                                    {k: r.pop(k) for k in ("fp32_onnx", "fp32_tflite")}))
                            r["seconds"] = sec
                            cf.write_text(json.dumps(r))
                        results.setdefault((mk, ck, meth), {})[d] = r
                        print(f"{key}: " + "; ".join(
                            f"{k} AP50 {v['ap50']:.3f} rec {v['recall']:.2f} prec "
                            f"{v['precision']:.2f} extra {v['extra']} SQNR "
                            f"{v['worst_sqnr_db'] or float('nan'):.1f}"
                            for k, v in r.items() if isinstance(v, dict))
                            + f"; export {r['seconds']:.0f} s", flush=True)
            if fp_cache.exists():
                fa = json.loads(fp_cache.read_text())
                fp32[mk]["onnx_ap50"] = fa["fp32_onnx"]["ap50"]
                fp32[mk]["tflite_ap50"] = fa["fp32_tflite"]["ap50"]
    import datetime as dt

    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), "cpu": cpu_name(),
            "cores": os.cpu_count(), "draw_size": args.draw_size,
            "builtin_count": args.builtin_count, "eval_images": len(img_ids)}
    text = summarise(results, fp32, meta, args.baseline, noise)
    print(text)
    if args.write_readme:
        write_readme(text, block_name=args.block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
