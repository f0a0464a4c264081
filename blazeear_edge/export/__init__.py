"""``export``: checkpoint -> verified fp32/int8 ONNX + TFLite artifacts and a manifest.

One configuration object (:class:`ExportConfig`, every key documented where it is declared) drives
one function (:func:`export`). Each backend is a plain function in its own module
(:mod:`.onnx_export`, :mod:`.tflite_export`, :mod:`blazeear_edge.quantize`). Artifacts are written
into a temporary folder beside the destination and renamed into place only when every one of them
has been verified, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._native import quiet_native_output
from ..errors import BlazeEarError
from ..manifest import MANIFEST_FILE, SCHEMA, write_json_atomic
from ..metrics import RELEVANT_SCORE
from ..postprocess import (CONCAT_OUTPUTS, SPLIT_MAP_OUTPUTS, SPLIT_OUTPUTS, DecodeConfig,
                           OutputSpec)

FORMATS = ("onnx", "tflite")
#: fp32 outputs must match their reference within FP32_TOLERANCE, scaled up for an image whose
#: output tensor reaches a peak M above 50 to FP32_TOLERANCE * M / 50 (2e-5 relative): outputs
#: reach about 170 on faces and thousands on background anchors of odd images, where float32
#: summation order alone moves the 5th significant digit.
FP32_TOLERANCE = 1e-3
FP32_REF_MAGNITUDE = 50.0  # i.e. 1e-3 absolute, or 2e-5 of the peak magnitude when larger
#: what the built-in verification images are (recorded in the manifest, printed by export)
BUILTIN_HOLDOUT_NOTE = (
    "built-in hold-out, not used for calibration: the astronaut photo and 40 upscaled 25x25 "
    "grey LFW crops. These are not camera frames: int8 losses on real photos (extra or "
    "missed detections) can stay invisible here; check on your own frames with "
    "'blazeear-edge parity EXPORT --images DIR' or calibrate with --calib DIR, which holds "
    "out part of your images for this check")
#: an int8 output below this SQNR gets a warning.
SQNR_WARN_DB = 30.0


@dataclass
class ExportConfig:
    weights: str = "mediapipe"  #: checkpoint: 'mediapipe' or a path (see weights.load_model)
    anchors: str | None = None  #: unit | ear | FILE.npy; None = the checkpoint's default
    int8: bool = False  #: also write per-channel int8 artifacts
    calib: str | None = None  #: calibration source: folder, CSV, COCO json, .npz; None = builtin
    calib_count: int = 200  #: images used for calibration
    calib_method: str = "movavg"  #: ONNX calibration: movavg | minmax | percentile | entropy
    weight_rounding: str = "adaround"  #: int8 weights: adaround | nearest (quantize.rounding)
    rounding_iterations: int = 2000  #: AdaRound iterations per layer (10000 = thorough)
    bias_correction: bool = False  #: fold each conv's int8-vs-fp32 mean output shift into its bias
    graph_score_clip: float | None = 16.0  #: saturate logits in the graph (bounds int8 range)
    equalize: bool = True  #: cross-layer equalisation of depthwise -> pointwise pairs
    crop_boxes: bool = False  #: add crops around labelled boxes (CSV / COCO sources)
    images_root: str | None = None  #: where CSV / COCO image paths are relative to
    seed: int = 0  #: sampling seed (deterministic calibration)
    formats: tuple = FORMATS  #: any of onnx, tflite
    outputs: str = "split"  #: split (4 head outputs, default) | concat (MediaPipe's 2)
    onnx_layout: str = "nchw"  #: ONNX split outputs: nchw (raw head maps, no Transpose) | anchors
    channel_pad: str = "auto"  #: auto | pad | concat | conv (skip-path channel widening)
    input_type: str = "float32"  #: int8 TFLite input: float32 | uint8 | int8
    opset: int = 17  #: ONNX opset (ST supports 7..20)
    out: str | None = None  #: output folder; default exports/<model name>
    verify_count: int = 32  #: held-out images for verification figures
    score_thresh: float = 0.5  #: decode threshold recorded in the manifest
    iou_thresh: float = 0.3  #: NMS IoU threshold recorded in the manifest
    nms: str = "weighted"  #: weighted (MediaPipe) | hard
    progress: bool = True  #: progress bars and step lines on stderr
    strict: bool = False  #: fail (nothing written) when the linter finds an error in an artifact


@dataclass
class ExportResult:
    out_dir: Path
    manifest: dict
    rows: list = field(default_factory=list)  # summary table rows
    warnings: list = field(default_factory=list)
    seconds: float = 0.0


class _Steps:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.t = self.t0

    def __call__(self, msg: str):
        now = time.perf_counter()
        if self.enabled:
            print(f"[{now - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)
        self.t = now


def tool_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("blazeear-edge", "torch", "onnx", "onnxruntime", "onnxsim", "onnx2tf",
                "tensorflow", "numpy", "opencv-python-headless"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _sha256(path: Path) -> str:
    from ..weights import sha256_file

    return sha256_file(path)


def _max_abs(a: list[dict], b: list[dict]) -> dict:
    names = list(a[0])
    return {n: float(max(np.abs(np.asarray(x[n], np.float64) - np.asarray(y[n], np.float64)).max()
                         for x, y in zip(a, b))) for n in names}


def _excess(a: list[dict], b: list[dict]) -> float:
    """max over tensors and images of max|a - b| / max(1, max|a| / 170): must be <= 1e-3."""
    worst = 0.0
    for x, y in zip(a, b):
        for n in x:
            r = np.asarray(x[n], np.float64)
            e = np.abs(r - np.asarray(y[n], np.float64)).max()
            worst = max(worst, float(e / max(1.0, np.abs(r).max() / FP32_REF_MAGNITUDE)))
    return worst


def _sqnr(ref: list[dict], test: list[dict], ref_specs, test_specs=None) -> tuple[dict, dict]:
    """(whole-tensor SQNR, SQNR over relevant anchors) per output, in dB (parity's statistics)."""
    from ..parity import tensor_stats

    stats = tensor_stats(ref, test, ref_specs, test_specs or ref_specs)
    whole = {t.name: round(t.sqnr_db, 2) for t in stats}
    rel = {t.name: None if t.sqnr_db_relevant is None else round(t.sqnr_db_relevant, 2)
           for t in stats}
    return whole, rel


def _detection_parity(ref: list[dict], test: list[dict], ref_specs, test_specs, anchors,
                      cfg: DecodeConfig) -> dict:
    from ..metrics import MatchStats, match_detections
    from ..postprocess import decode_outputs

    total = MatchStats()
    for r, t in zip(ref, test):
        dr = decode_outputs(r, anchors, cfg, ref_specs)
        dt = decode_outputs(t, anchors, cfg, test_specs)
        total = total.add(match_detections(dr, dt))
    d = total.to_dict()
    d["images"] = len(ref)
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def choose_channel_pad(model, opset: int, outputs: str,
                       layout: str = "anchors") -> tuple[str, dict]:
    """Lint every channel-padding rewrite and keep the one with the lowest predicted cost."""
    from .onnx_export import export_onnx

    try:
        from ..lint import lint_model
    except ImportError:
        return "concat", {"reason": "linter unavailable; concat is hardware-mapped per ST docs"}
    costs = {}
    for mode in ("pad", "concat", "conv"):
        m = export_onnx(model, None, opset=opset, outputs=outputs, channel_pad=mode,
                        layout=layout)
        rep = lint_model(m, assume_int8=True)  # as it will be once quantised
        mapping = rep.mapping
        get = (lambda k: mapping.get(k)) if isinstance(mapping, dict) else (
            lambda k: getattr(mapping, k, None))
        epochs = get("epochs")
        costs[mode] = {"cost": float(get("cost")), "epochs": epochs, "macc": rep.macc,
                       "weights_bytes": rep.weights_bytes}
    best = min(costs, key=lambda k: (costs[k]["cost"], costs[k]["macc"]))
    return best, {"predicted": costs, "reason": "lowest linter cost, then fewest MACs"}


def camera_mapping(scale: float, zero_point: int, dtype: str) -> dict:
    """How a camera pixel p (uint8 RGB, 0..255) becomes the model's quantised input q."""
    p = np.arange(256, dtype=np.float64)
    info = np.iinfo(np.dtype(dtype))
    q = np.clip(np.round((p / 127.5 - 1.0) / scale) + zero_point, info.min, info.max)
    recon = (q - zero_point) * scale
    off = q - p
    identity = bool(np.all(off == off[0]))
    return {
        "formula": "q = clip(round((p / 127.5 - 1) / scale) + zero_point)",
        "pixel_offset": int(off[0]) if identity else None,
        "is_pixel_plus_offset": identity,
        "max_abs_error_float": float(np.abs(recon - (p / 127.5 - 1.0)).max()),
        "note": ("feed q = p + pixel_offset straight from the camera" if identity else
                 "apply the formula per pixel (a 256-entry lookup table)"),
    }


def stedgeai_command(tflite_name: str, input_type: str) -> str:
    in_type = "uint8" if input_type in ("float32", "uint8") else "int8"
    return (f"stedgeai generate --model {tflite_name} --target stm32n6 "
            f"--st-neural-art default@user_neuralart.json --input-data-type {in_type} "
            f"--inputs-ch-position chlast --output-data-type int8 --c-api st-ai "
            f"--output st_ai_output")


def _tflite_io(path: Path, specs) -> tuple[dict, list[dict]]:
    from ..runtimes import tflite_interpreter, tflite_output_map

    it = tflite_interpreter(path)
    d = it.get_input_details()[0]
    s, z = d["quantization"]
    inp = {"name": d["name"], "shape": [int(v) for v in d["shape"]], "layout": "NHWC",
           "dtype": np.dtype(d["dtype"]).name, "scale": float(s), "zero_point": int(z)}
    mapping = tflite_output_map(it, specs)
    by_name = {sp.name: sp for sp in specs}
    outs = []
    for od in it.get_output_details():
        sp = by_name[mapping[od["index"]]]
        s, z = od["quantization"]
        dtype = np.dtype(od["dtype"]).name
        o = OutputSpec(sp.name, sp.kind, sp.anchor_start, sp.anchor_count, dtype,
                       float(s) if dtype != "float32" else 1.0,
                       int(z) if dtype != "float32" else 0, list(sp.shape))
        d2 = o.to_dict()
        d2["tensor_name"] = od["name"]
        d2["index"] = int(od["index"])
        outs.append(d2)
    return inp, outs


def export(cfg: ExportConfig) -> ExportResult:
    """Run the whole export; see the module docstring."""
    from ..anchors import resolve_anchors
    from ..quantize import CALIBRATION_METHODS, INPUT_TYPES
    from ..weights import load_model

    step = _Steps(cfg.progress)
    formats = tuple(cfg.formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise BlazeEarError(f"--formats: unknown value(s) {', '.join(bad) or '(empty)'}; "
                            f"choose from {', '.join(FORMATS)}")
    if cfg.input_type not in INPUT_TYPES:
        raise BlazeEarError(f"--input-type must be one of {', '.join(INPUT_TYPES)}")
    if cfg.calib_method not in CALIBRATION_METHODS:
        raise BlazeEarError(f"--calib-method must be one of {', '.join(CALIBRATION_METHODS)}")
    if cfg.weight_rounding not in ("adaround", "nearest"):
        raise BlazeEarError("--weight-rounding must be adaround or nearest")
    if cfg.weight_rounding == "adaround" and cfg.rounding_iterations <= 0:
        raise BlazeEarError(f"--rounding-iterations must be positive, got "
                            f"{cfg.rounding_iterations}")
    if cfg.channel_pad not in ("auto", "pad", "concat", "conv"):
        raise BlazeEarError("--channel-pad must be auto, pad, concat or conv")
    if cfg.outputs not in ("split", "concat"):
        raise BlazeEarError("--outputs must be split or concat")

    model = load_model(cfg.weights, fold=True)
    info = model.info
    model.set_output_clip(cfg.graph_score_clip, None)
    reference = model  # fp32 artifacts are verified against the checkpoint as loaded
    if cfg.equalize:
        from ..quantize.equalize import equalize_blocks

        model = equalize_blocks(model)
    anchors = resolve_anchors(cfg.anchors, info.default_anchors)
    name = info.name
    out_dir = Path(cfg.out) if cfg.out else Path("exports") / name
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp_root = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    except OSError as exc:
        raise BlazeEarError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from None
    step(f"loaded {info.description} ({info.kind}, sha256 {info.sha256[:12]}...); "
         f"anchors: {anchors.kind}; writing {out_dir}")
    warnings_: list[str] = []
    try:
        result = _export_into(tmp_root, cfg, model, info, anchors, name, step, warnings_,
                              formats, reference)
        # atomic replace of the destination
        backup = None
        if out_dir.exists():
            backup = parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, backup)
        os.replace(tmp_root, out_dir)
        if backup is not None:
            shutil.rmtree(backup, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp_root, ignore_errors=True)
        raise
    result.out_dir = out_dir
    result.warnings = warnings_
    result.seconds = time.perf_counter() - step.t0
    return result


def _export_into(root: Path, cfg: ExportConfig, model, info, anchors, name, step, warns,
                 formats, reference) -> ExportResult:
    from ..calib_data import build_calibration, save_npz
    from ..model import count_parameters
    from ..quantize import (activation_sqnr, onnx_output_quantization, quantize_onnx,
                            quantize_tflite)
    from ..runtimes import onnx_session, run_onnx, run_tflite, run_torch
    from .onnx_export import INPUT_NAME, export_onnx, op_counts
    from .tflite_export import onnx_to_tflite

    decode_cfg = DecodeConfig(score_thresh=cfg.score_thresh, iou_thresh=cfg.iou_thresh,
                              nms=cfg.nms)
    specs = SPLIT_OUTPUTS if cfg.outputs == "split" else CONCAT_OUTPUTS
    onnx_layout = cfg.onnx_layout if cfg.outputs == "split" else "anchors"
    onnx_specs = SPLIT_MAP_OUTPUTS if onnx_layout == "nchw" else specs
    need_tflite = "tflite" in formats

    # -- images: calibration + held-out verification ----------------------------------------
    verify, held_names = _verification_set(cfg)
    calib = None
    if cfg.int8 or need_tflite:
        calib = build_calibration(cfg.calib, cfg.calib_count, seed=cfg.seed,
                                  crop_boxes=cfg.crop_boxes, images_root=cfg.images_root,
                                  progress=cfg.progress, exclude=held_names)
        step(f"calibration: {len(calib)} images from {calib.provenance.get('source')}"
             + (f" ({calib.provenance['skipped']} unreadable skipped)"
                if calib.provenance.get("skipped") else ""))
        if calib.provenance.get("default_used"):
            warns.append("calibrated on the built-in generic face images: calibrate on your "
                         "own images (--calib DIR|CSV|COCO) for a real deployment")
    step(f"verification: {len(verify)} images ({verify.provenance['note']})")
    if cfg.int8 and verify.provenance["note"] == BUILTIN_HOLDOUT_NOTE:
        warns.append("int8 verified on the built-in hold-out only (not camera frames): "
                     "check on your own frames with 'blazeear-edge parity EXPORT --images DIR'")

    # -- ONNX fp32 -----------------------------------------------------------------------------
    pad_mode, pad_choice = cfg.channel_pad, {"reason": "requested"}
    if pad_mode == "auto":
        pad_mode, pad_choice = choose_channel_pad(model, cfg.opset, cfg.outputs, onnx_layout)
        pred = pad_choice.get("predicted")
        if pred:
            base = pred["pad"]
            pad_choice["extra_vs_pad"] = {
                k: {"macc": v["macc"] - base["macc"],
                    "weights_bytes_fp32": v["weights_bytes"] - base["weights_bytes"]}
                for k, v in pred.items()}
            desc = "; ".join(
                f"{k}: {sum(v['epochs'].values())} epochs ({v['epochs']['hybrid']} hybrid), "
                f"+{v['macc'] - base['macc']:,} MACs, "
                f"+{v['weights_bytes'] - base['weights_bytes']:,} B" for k, v in pred.items())
            step(f"channel padding: '{pad_mode}' ({pad_choice['reason']}; {desc})")
        else:
            step(f"channel padding: '{pad_mode}' ({pad_choice['reason']})")
    fp32_onnx = root / f"{name}_fp32.onnx"
    m = export_onnx(model, fp32_onnx, opset=cfg.opset, outputs=cfg.outputs,
                    channel_pad=pad_mode, layout=onnx_layout)
    torch_model = _torch_reference(reference, cfg.outputs)
    ref = run_torch(torch_model, verify.nchw, specs)
    sess = onnx_session(fp32_onnx)
    onnx_fp32_out = run_onnx(sess, verify.nchw, onnx_specs)  # anchor order, whatever the layout
    err = _max_abs(ref, onnx_fp32_out)
    worst = max(err.values())
    step(f"ONNX fp32: {len(m.graph.node)} nodes {op_counts(m)}; max |ORT - PyTorch| = "
         f"{worst:.2e}")
    err_scaled = _excess(ref, onnx_fp32_out)
    if err_scaled > FP32_TOLERANCE:
        raise BlazeEarError(f"{fp32_onnx.name}: ONNX Runtime differs from PyTorch by {worst:.2e} "
                            f"(> {FP32_TOLERANCE} at magnitude {FP32_REF_MAGNITUDE:.0f})", exit_code=1)
    artifacts: dict = {}
    artifacts["fp32_onnx"] = _artifact(
        fp32_onnx, "onnx", "fp32",
        {"name": INPUT_NAME, "shape": [1, 3, 128, 128], "layout": "NCHW", "dtype": "float32"},
        [s.to_dict() for s in onnx_specs],
        {"reference": "pytorch", "max_abs_err": err, "max_scaled_err": err_scaled,
         "tolerance": FP32_TOLERANCE,
         "reference_magnitude": FP32_REF_MAGNITUDE,
         "images": len(verify)})
    quant_report: dict = {}
    # -- int8 weights prepared on their grid (quantize.rounding; both int8 artifacts) ----------
    prepared = _prepare_int8_weights(cfg, model, calib, step) if cfg.int8 else None
    int8_model = prepared.model if prepared is not None else model

    # -- ONNX int8 -----------------------------------------------------------------------------
    if cfg.int8 and "onnx" in formats:
        int8_onnx = root / f"{name}_int8.onnx"
        step(f"quantising ONNX (QDQ, per-channel int8, {cfg.calib_method}, "
             f"{len(calib)} images) ...")
        clip = cfg.graph_score_clip
        q_kw = dict(global_range_outputs=[] if clip else
                    [s.name for s in specs if s.kind == "scores"],
                    fixed_output_ranges={s.name: (-clip, clip) for s in specs
                                         if s.kind == "scores"} if clip else None)
        with tempfile.TemporaryDirectory(dir=root) as td:
            src_onnx, w_over = fp32_onnx, None
            if prepared is not None:  # the on-grid float model, its grid pinned for ORT
                from ..quantize.rounding import weight_overrides

                src_onnx = Path(td) / "ongrid.onnx"
                export_onnx(int8_model, src_onnx, opset=cfg.opset, outputs=cfg.outputs,
                            channel_pad=pad_mode, layout=onnx_layout)
                w_over = weight_overrides(src_onnx)
                before = Path(td) / "nearest_int8.onnx"  # the un-prepared int8, for the record
                quantize_onnx(fp32_onnx, before, calib.nchw, cfg.calib_method, INPUT_NAME, **q_kw)
                b_out = run_onnx(before, verify.nchw, onnx_specs)
                prepared.report["before"] = {
                    "what": "int8 ONNX with round-to-nearest weights, same calibration",
                    "sqnr_db": _sqnr(ref, b_out, specs)[1],
                    "detections": _detection_parity(ref, b_out, specs, specs, anchors.table,
                                                     decode_cfg)}
            quantize_onnx(src_onnx, int8_onnx, calib.nchw, cfg.calib_method, INPUT_NAME,
                          weight_overrides=w_over, **q_kw)
        oq = onnx_output_quantization(int8_onnx)
        q_out = run_onnx(int8_onnx, verify.nchw, onnx_specs)
        sq_all, sq = _sqnr(ref, q_out, specs)
        det = _detection_parity(ref, q_out, specs, specs, anchors.table, decode_cfg)
        outs = []
        for s in onnx_specs:
            d = s.to_dict()
            if s.name in oq:
                d["quantization"] = {"scale": oq[s.name][0], "zero_point": oq[s.name][1],
                                     "dtype": "int8", "note": "of the DequantizeLinear that "
                                     "feeds this float output"}
            outs.append(d)
        artifacts["int8_onnx"] = _artifact(
            int8_onnx, "onnx", "int8",
            {"name": INPUT_NAME, "shape": [1, 3, 128, 128], "layout": "NCHW",
             "dtype": "float32"}, outs,
            {"reference": "pytorch fp32", "sqnr_db": sq, "sqnr_db_all_anchors": sq_all,
             "relevant_score": RELEVANT_SCORE, "detections": det, "images": len(verify)})
        step(f"ONNX int8: SQNR {_fmt_sqnr(sq)}; detections matched "
             f"{det['matched']}/{det['ref']} (extra {det['extra']})")
        if prepared is not None:
            prepared.report["after"] = {"sqnr_db": sq, "detections": det}
        step("per-tensor quantisation error (onnxruntime qdq_loss_debug) ...")
        layers = activation_sqnr(fp32_onnx, int8_onnx, verify.nchw[:8], INPUT_NAME)
        quant_report["onnx"] = {"outputs_sqnr_db": sq, "outputs_sqnr_db_all_anchors": sq_all,
                                "tensors": layers,
                                "images": min(8, len(verify))}
        _warn_sqnr("ONNX int8", sq, warns)

    # -- TFLite --------------------------------------------------------------------------------
    if need_tflite:
        step("converting to TFLite with onnx2tf (offline, our calibration images) ...")
        with tempfile.TemporaryDirectory(dir=root) as td:
            # onnx2tf rewrites its input file in place (onnxsim): hand it a copy, in the
            # anchor layout (NHWC heads reshape to anchor order with no transpose in TFLite)
            src = Path(td) / fp32_onnx.name
            if onnx_layout == "anchors":
                shutil.copyfile(fp32_onnx, src)
            else:
                export_onnx(model, src, opset=cfg.opset, outputs=cfg.outputs,
                            channel_pad=pad_mode, layout="anchors")
            with quiet_native_output(not getattr(cfg, "verbose", False)):
                saved, f32 = onnx_to_tflite(src, Path(td) / "tf", calib.nhwc)
            fp32_tfl = root / f"{name}_fp32.tflite"
            shutil.copyfile(f32, fp32_tfl)
            tfl_out = run_tflite(fp32_tfl, verify.nhwc, specs)
            err_t = _max_abs(onnx_fp32_out, tfl_out)
            worst_t = max(err_t.values())
            step(f"TFLite fp32: max |TFLite - ORT| = {worst_t:.2e}")
            err_scaled_t = _excess(onnx_fp32_out, tfl_out)
            if err_scaled_t > FP32_TOLERANCE:
                raise BlazeEarError(f"{fp32_tfl.name}: TFLite differs from ONNX Runtime by "
                                    f"{worst_t:.2e} (> {FP32_TOLERANCE} at magnitude {FP32_REF_MAGNITUDE:.0f})",
                                    exit_code=1)
            inp, outs = _tflite_io(fp32_tfl, specs)
            artifacts["fp32_tflite"] = _artifact(
                fp32_tfl, "tflite", "fp32", inp, outs,
                {"reference": "onnxruntime fp32", "max_abs_err": err_t,
                 "max_scaled_err": err_scaled_t,
                 "tolerance": FP32_TOLERANCE, "reference_magnitude": FP32_REF_MAGNITUDE, "images": len(verify)})
            if cfg.int8:
                step(f"quantising TFLite (full-integer, per-channel, input {cfg.input_type}, "
                     f"int8 outputs, {len(calib)} images) ...")
                clip = cfg.graph_score_clip
                if prepared is not None:  # the same on-grid weights through onnx2tf
                    src2 = Path(td) / "ongrid" / fp32_onnx.name
                    src2.parent.mkdir()
                    export_onnx(int8_model, src2, opset=cfg.opset, outputs=cfg.outputs,
                                channel_pad=pad_mode, layout="anchors")
                    with quiet_native_output(not getattr(cfg, "verbose", False)):
                        saved, _ = onnx_to_tflite(src2, Path(td) / "tf_ongrid", calib.nhwc)
                with quiet_native_output():
                    blob = quantize_tflite(saved, calib.nhwc, cfg.input_type,
                                           "movavg" if cfg.calib_method == "movavg"
                                           else "minmax",
                                           score_range=(-clip, clip) if clip else None)
                int8_tfl = root / f"{name}_int8.tflite"
                int8_tfl.write_bytes(blob)
        if cfg.int8:
            inp, outs = _tflite_io(int8_tfl, specs)
            if inp["dtype"] != "float32":
                inp["camera_mapping"] = camera_mapping(inp["scale"], inp["zero_point"],
                                                       inp["dtype"])
            t_specs = [OutputSpec.from_dict(o) for o in outs]
            q_out = run_tflite(int8_tfl, verify.nhwc, t_specs)
            sq_all, sq = _sqnr(ref, q_out, specs, t_specs)
            det = _detection_parity(ref, q_out, specs, t_specs, anchors.table, decode_cfg)
            artifacts["int8_tflite"] = _artifact(
                int8_tfl, "tflite", "int8", inp, outs,
                {"reference": "pytorch fp32", "sqnr_db": sq, "sqnr_db_all_anchors": sq_all,
                 "relevant_score": RELEVANT_SCORE, "detections": det, "images": len(verify)})
            step(f"TFLite int8: SQNR {_fmt_sqnr(sq)}; detections matched "
                 f"{det['matched']}/{det['ref']} (extra {det['extra']})")
            quant_report["tflite"] = {"outputs_sqnr_db": sq, "outputs_sqnr_db_all_anchors": sq_all}
            _warn_sqnr("TFLite int8", sq, warns)
            _check_int8_tflite(int8_tfl)
    if "onnx" not in formats:
        fp32_onnx.unlink()
        del artifacts["fp32_onnx"]

    # -- lint ----------------------------------------------------------------------------------
    lint_summary = _lint_all(root, artifacts, step)
    if cfg.strict and lint_summary:
        bad = {k: v["rules"] for k, v in lint_summary.items() if v["errors"]}
        if bad:
            raise BlazeEarError("--strict: the linter found errors: " + "; ".join(
                f"{k}: {', '.join(v)}" for k, v in bad.items()), exit_code=1)

    # -- side files ----------------------------------------------------------------------------
    np.save(root / "anchors.npy", anchors.table)
    calib_info = None
    if calib is not None:
        save_npz(calib, root / "calib.npz")
        calib_info = dict(calib.provenance)
        calib_info["file"] = "calib.npz"
        calib_info["method"] = cfg.calib_method
    if prepared is not None:
        calib_info["weights"] = {k: v for k, v in prepared.report.items() if k != "layers"}
        quant_report["weights"] = prepared.report
    verification = {"images": len(verify), "source": verify.provenance,
                    "fp32_tolerance": FP32_TOLERANCE, "sqnr_warn_db": SQNR_WARN_DB}
    for k, a in artifacts.items():
        verification[k] = a["verification"]
    if quant_report:
        quant_report["sqnr_warn_db"] = SQNR_WARN_DB
        write_json_atomic(root / "quant_report.json", quant_report)

    manifest = {
        "schema": SCHEMA,
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {"kind": info.kind, "description": info.description, "source": info.source,
                  "sha256": info.sha256, "params": count_parameters(model),
                  "batchnorm_folded": bool(info.batchnorm), "notes": info.notes},
        "tools": tool_versions(),
        "input": {"name": INPUT_NAME, "shape": [1, 3, 128, 128], "layout": "NCHW (ONNX), "
                  "NHWC (TFLite)", "dtype": "float32",
                  "normalization": {"scale": 1 / 127.5, "offset": -1.0,
                                    "formula": "x = p / 127.5 - 1 for RGB pixel p in 0..255",
                                    "letterbox": "centred, aspect kept, border p = 0 (x = -1)"}},
        "artifacts": artifacts,
        "anchors": {"kind": anchors.kind, "source": anchors.source, "file": "anchors.npy",
                    "sha256": _sha256(root / "anchors.npy"), "count": int(len(anchors.table)),
                    "columns": ["x_center", "y_center", "w", "h"]},
        "decode": decode_cfg.to_dict(),
        "calibration": calib_info,
        "export": {"outputs": cfg.outputs, "onnx_layout": onnx_layout, "channel_pad": pad_mode,
                   "score_clip_in_graph": cfg.graph_score_clip,
                   "equalization": getattr(model, "equalization", None),
                   "channel_pad_choice": pad_choice, "opset": cfg.opset,
                   "input_type": cfg.input_type, "formats": list(formats), "int8": cfg.int8},
        "verification": verification,
        "lint": lint_summary,
        "stedgeai": ({"generate": stedgeai_command(f"{name}_int8.tflite", cfg.input_type),
                      "generate_onnx": (stedgeai_command(f"{name}_int8.onnx", "float32")
                                        + " --outputs-ch-position chlast")
                      if "int8_onnx" in artifacts else None,
                      "note": "ST Edge AI Core cannot run here; user_neuralart.json is ST's "
                              "Neural-ART profile file from the model zoo. For the ONNX model, "
                              "--outputs-ch-position chlast makes the head maps arrive in "
                              "anchor order (what the C post-processing reads)"}
                     if "int8_tflite" in artifacts or "int8_onnx" in artifacts else None),
    }
    write_json_atomic(root / MANIFEST_FILE, manifest)
    rows = []
    for k, a in artifacts.items():
        rows.append({"artifact": a["path"], "size_kib": round(a["size_bytes"] / 1024, 1),
                     "check": _figure(a["verification"]),
                     "lint": (lint_summary or {}).get(k, {}).get("verdict", "-")})
    return ExportResult(root, manifest, rows)


def _prepare_int8_weights(cfg: ExportConfig, model, calib, step):
    """The int8 weight lever (``quantize.rounding.prepare_weights``), or None for plain
    round-to-nearest without bias correction (the quantisers then round by themselves)."""
    if cfg.weight_rounding == "nearest" and not cfg.bias_correction:
        return None
    from ..quantize.rounding import prepare_weights

    what = (f"AdaRound {cfg.rounding_iterations} iterations/layer"
            if cfg.weight_rounding == "adaround" else "round-to-nearest")
    step(f"int8 weights: {what}{' + bias correction' if cfg.bias_correction else ''} "
         f"(fp32 model as teacher, {min(len(calib), 64)} calibration images) ...")
    prepared = prepare_weights(model, calib.nchw, cfg.weight_rounding, cfg.rounding_iterations,
                               cfg.bias_correction, progress=cfg.progress)
    step(f"int8 weights ready in {prepared.report['seconds']:.1f} s")
    return prepared


def _torch_reference(model, outputs):
    from ..model import MediaPipeLayout

    return MediaPipeLayout(model).eval() if outputs == "concat" else model.eval()


def _verification_set(cfg: ExportConfig):
    """Verification images: the built-in hold-out, or a seeded part of the user's source that
    calibration then leaves out (when the source has enough images)."""
    from ..calib_data import builtin_holdout, load_images, resolve_source

    src = cfg.calib if cfg.calib and not str(cfg.calib).endswith(".npz") else None
    kind, samples = resolve_source(src, cfg.images_root)
    if kind == "builtin":
        held, note = builtin_holdout(samples), BUILTIN_HOLDOUT_NOTE
    elif len(samples) >= cfg.calib_count + 8 or len(samples) >= 2 * cfg.verify_count:
        rng = np.random.default_rng(cfg.seed + 1)
        idx = rng.permutation(len(samples))[:min(cfg.verify_count, len(samples) // 4)]
        held, note = [samples[int(i)] for i in idx], "held out from calibration"
    else:
        held, note = samples, "overlaps the calibration set (too few images to hold some out)"
    vs = load_images(held, count=cfg.verify_count if kind != "builtin" else None,
                     seed=cfg.seed + 1, source=str(src or "builtin"), kind=kind,
                     progress=cfg.progress, desc="verification images")
    vs.provenance["note"] = note
    vs.provenance["names"] = vs.names
    vs.provenance.pop("files", None)
    vs.provenance.pop("skipped_files", None)
    return vs, ({s.name for s in held} if "held out" in note else set())


def _artifact(path: Path, fmt, precision, inp, outs, verification) -> dict:
    return {"path": path.name, "format": fmt, "precision": precision,
            "size_bytes": path.stat().st_size, "sha256": _sha256(path), "input": inp,
            "outputs": outs, "verification": verification}


def _fmt_sqnr(sq: dict) -> str:
    return ", ".join(f"{k} {v:.1f} dB" for k, v in sq.items() if v is not None)


def _warn_sqnr(what, sq, warns):
    low = [k for k, v in sq.items() if v is not None and v < SQNR_WARN_DB]
    if low:
        warns.append(f"{what}: SQNR on relevant anchors (fp32 score >= {RELEVANT_SCORE}) under "
                     f"{SQNR_WARN_DB:.0f} dB for {', '.join(low)}")


def _figure(v: dict) -> str:
    if "max_abs_err" in v:
        return (f"max err {max(v['max_abs_err'].values()):.1e} abs, "
                f"{v['max_scaled_err']:.1e} scaled (tol {v['tolerance']:.0e}) vs {v['reference']}")
    sq = min(x for x in v["sqnr_db"].values() if x is not None)
    d = v["detections"]
    iou = f", IoU {d['mean_iou']:.3f}" if d.get("mean_iou") else ""
    return (f"SQNR >= {sq:.1f} dB (relevant anchors), {d['matched']}/{d['ref']} detections "
            f"matched{iou}, {d['extra']} extra")


def _check_int8_tflite(path: Path) -> None:
    """No float16 tensors; all conv weights int8 per-channel with zero point 0."""
    import tflite

    buf = path.read_bytes()
    m = tflite.Model.GetRootAsModel(buf, 0)
    g = m.Subgraphs(0)
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        if t.Type() == tflite.TensorType.FLOAT16:
            raise BlazeEarError(f"{path.name}: float16 tensor {t.Name().decode()} "
                                "(ST Edge AI fails on FLOAT16)", exit_code=1)


def _lint_all(root: Path, artifacts: dict, step) -> dict | None:
    try:
        from ..lint import lint_model
    except ImportError:
        return None
    out = {}
    for k, a in artifacts.items():
        rep = lint_model(root / a["path"])
        d = rep.to_dict()
        d["model"] = a["path"]  # relative: the folder may move
        write_json_atomic(root / f"lint_{k}.json", d)
        s = d["summary"]
        verdict = "errors" if s["errors"] else ("warnings" if s["warnings"] else "clean")
        out[k] = {"verdict": verdict, "file": f"lint_{k}.json", "errors": s["errors"],
                  "warnings": s["warnings"],
                  "epochs": d.get("mapping", {}).get("epochs"), "macc": d.get("macc"),
                  "rules": sorted({f["rule"] for f in d["findings"]
                                   if f["severity"] in ("error", "warning")})}
    step("lint: " + ", ".join(f"{k} {v['verdict']}" for k, v in out.items()))
    return out


def format_summary(res: ExportResult) -> str:
    """The table printed at the end of ``export``."""
    rows = [("artifact", "size KiB", "verification", "lint")]
    rows += [(r["artifact"], f"{r['size_kib']:.1f}", r["check"], r["lint"]) for r in res.rows]
    w = [max(len(str(r[i])) for r in rows) for i in range(4)]
    lines = ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    lines.append("")
    lines.append(f"written to {res.out_dir}/ (manifest.json, anchors.npy"
                 + (", calib.npz, quant_report.json" if res.manifest.get("calibration") else "")
                 + (", lint_*.json" if res.manifest.get("lint") else "")
                 + f") in {res.seconds:.1f} s")
    for wmsg in res.warnings:
        lines.append(f"warning: {wmsg}")
    return "\n".join(lines)


__all__ = ["ExportConfig", "ExportResult", "export", "format_summary", "asdict"]
