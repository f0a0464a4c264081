"""``export``: checkpoint -> verified fp32/int8 ONNX + TFLite artifacts and a manifest.

One configuration object (:class:`~.config.ExportConfig`, every key documented where it is
declared and validated there by name) is resolved once into an :class:`ExportPlan` (model,
anchors, images, channel padding, tolerances); then one short function per stage writes and
verifies one thing::

    plan = make_plan(cfg)            # load -> equalise -> anchors -> images -> channel padding
    onnx_fp32(plan)                  # float ONNX, verified against PyTorch
    prepare_int8_weights(plan)       # AdaRound: weights on the int8 grid (quantize.rounding)
    onnx_int8(plan)                  # ORT QDQ, per-channel int8, verified
    tflite_stages(plan)              # onnx2tf (offline) fp32 TFLite, then the TF Lite
                                     # converter's full-integer int8 (tflite_int8), verified
    lint_artifacts(plan)             # ST Edge AI / N6 rules per artifact
    write_manifest(plan)             # the typed manifest (schema 2); records.py: the rest

Every artifact is verified by :mod:`blazeear_edge.compare` against the PyTorch model as loaded,
with the same tolerances ``parity`` uses: one verdict per artifact everywhere. An fp32 artifact
that fails is an error (nothing is written); an int8 one that fails or warns is a warning
(``--strict`` makes a lint error fatal). Backends are plain functions in their own modules
(:mod:`.onnx_export`, :mod:`.tflite_export`, :mod:`blazeear_edge.quantize`). Artifacts are
written into a temporary folder beside the destination and renamed into place only when every
one of them has been verified, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._native import quiet_native_output
from ..anchors import resolve_anchors
from ..calib_data import (BUILTIN_HOLDOUT_NOTE, build_calibration, save_npz,
                          verification_images)
from ..compare import RELEVANT_SCORE, RuntimeResult, Tolerances, compare_runtime
from ..errors import BlazeEarError
from ..lint import lint_model
from ..manifest import (MANIFEST_FILE, ArtifactEntry, ExportEntry, ExportManifest, InputEntry,
                        ModelEntry, OutputEntry, write_json_atomic)
from .. import noise_floor
from ..postprocess import (CONCAT_OUTPUTS, SPLIT_MAP_OUTPUTS, SPLIT_OUTPUTS, DecodeConfig,
                           decode_outputs)
from ..quantize import (activation_sqnr, onnx_output_quantization, quantize_onnx,
                        quantize_tflite)
from ..quantize.equalize import equalize_blocks
from ..quantize.qat import finetune
from ..quantize.rounding import prepare_weights, weight_overrides
from ..runtimes import onnx_session, run_onnx, run_tflite, run_torch, tflite_io
from ..stapp import (ST_APP_DECODE, calibration_to_camera, fold_camera_input,
                     prefilter_warnings, reorder_tflite_outputs, st_app_record,
                     stedgeai_st_app_command, write_st_app_package)
from ..weights import load_model, sha256_file
from .config import FORMATS, ExportConfig
from .onnx_export import INPUT_NAME, export_onnx, op_counts
from .records import (camera_mapping, check_int8_tflite, figure, format_summary, stedgeai_command,
                      tool_versions)
from .tflite_export import onnx_to_tflite


@dataclass
class ExportResult:
    out_dir: Path
    manifest: ExportManifest
    rows: list = field(default_factory=list)  # summary table rows
    warnings: list = field(default_factory=list)
    seconds: float = 0.0


class _Steps:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str):
        if self.enabled:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)


@dataclass
class ExportPlan:
    """The export's inputs, resolved once; stages add their artifacts to it."""

    cfg: ExportConfig
    root: Path  # the temporary folder being filled
    model: object  # the (equalised) model that is exported
    reference: object  # the model as loaded: what every artifact is verified against
    info: object  # weights.ModelInfo
    anchors: object  # anchors.Anchors
    decode: DecodeConfig
    specs: tuple  # output specs in anchor order (TFLite, PyTorch)
    onnx_layout: str
    onnx_specs: tuple
    pad_mode: str
    pad_choice: dict
    verify: object  # calib_data.ImageSet: held-out verification images
    calib: object | None  # calib_data.ImageSet, or None (fp32 ONNX only)
    calib_methods: dict  # format -> calibration method really used
    step: _Steps
    tolerances: Tolerances = field(default_factory=Tolerances)
    warnings: list = field(default_factory=list)
    artifacts: dict = field(default_factory=dict)  # key -> ArtifactEntry
    quant_report: dict = field(default_factory=dict)
    ref_outputs: list | None = None  # PyTorch outputs on the verification images
    torch_ref: object | None = None  # the PyTorch reference model those came from
    noise_ladder: dict | None = None  # fp32 under pixel noise on those images (noise_floor)
    int8_model: object | None = None  # the model with its weights on the int8 grid (rounding)
    weights_report: dict | None = None  # what the weight rounding did (manifest: calibration)
    lint: dict | None = None
    st_app: dict | None = None  # stapp choices recorded in the manifest

    @property
    def name(self) -> str:
        return self.info.name

    def path(self, suffix: str) -> Path:
        return self.root / f"{self.name}_{suffix}"


def export(cfg: ExportConfig) -> ExportResult:
    """Run the whole export; see the module docstring."""
    step = _Steps(cfg.progress)
    model = load_model(cfg.weights, fold=True)
    out_dir = Path(cfg.out) if cfg.out else Path("exports") / model.info.name
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=parent))
    except OSError as exc:
        raise BlazeEarError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from None
    try:
        plan = make_plan(cfg, model, root, step)
        step(f"loaded {plan.info.description} ({plan.info.kind}, sha256 "
             f"{plan.info.sha256[:12]}...); anchors: {plan.anchors.kind}; writing {out_dir}")
        onnx_fp32(plan)
        if cfg.int8:
            prepare_int8_weights(plan)
        if cfg.int8 and "onnx" in cfg.formats:
            onnx_int8(plan)
        if "tflite" in cfg.formats:
            tflite_stages(plan)
        if "onnx" not in cfg.formats:
            plan.path("fp32.onnx").unlink()
            del plan.artifacts["fp32_onnx"]
        lint_artifacts(plan)
        manifest = write_manifest(plan)
        _replace_dir(root, out_dir)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    manifest.root = out_dir
    return ExportResult(out_dir, manifest, _summary_rows(plan), plan.warnings,
                        time.perf_counter() - step.t0)


def _replace_dir(src: Path, dst: Path) -> None:
    """Atomic replace of ``dst`` by the finished folder ``src``."""
    backup = None
    if dst.exists():
        backup = dst.resolve().parent / f".{dst.name}.old-{os.getpid()}"
        os.replace(dst, backup)
    os.replace(src, dst)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# plan
# ---------------------------------------------------------------------------------------------
def make_plan(cfg: ExportConfig, model, root: Path, step) -> ExportPlan:
    """Resolve the model, anchors, images and channel padding of an export."""
    info = model.info
    model.set_output_clip(cfg.logit_saturation, None)
    reference = model  # every artifact is verified against the checkpoint as loaded
    if cfg.equalize:
        model = equalize_blocks(model)
    specs = SPLIT_OUTPUTS if cfg.outputs == "split" else CONCAT_OUTPUTS
    onnx_layout = cfg.onnx_layout if cfg.outputs == "split" else "anchors"
    verify, held_names = verification_images(cfg.calib, cfg.images_root,
                                             calib_count=cfg.calib_count,
                                             verify_count=cfg.verify_count, seed=cfg.seed,
                                             progress=cfg.progress)
    calib = None
    if cfg.int8 or "tflite" in cfg.formats:
        calib = build_calibration(cfg.calib, cfg.calib_count, seed=cfg.seed,
                                  crop_boxes=cfg.crop_boxes, images_root=cfg.images_root,
                                  progress=cfg.progress, exclude=held_names)
    pad_mode, pad_choice = cfg.channel_pad, {"reason": "requested"}
    if pad_mode == "auto":
        pad_mode, pad_choice = choose_channel_pad(model, cfg.opset, cfg.outputs, onnx_layout)
    tfl_method = (cfg.calib_method if cfg.calib_method in ("movavg", "minmax", "percentile")
                  else "minmax")
    plan = ExportPlan(
        cfg=cfg, root=root, model=model, reference=reference, info=info,
        anchors=resolve_anchors(cfg.anchors, info.default_anchors),
        decode=ST_APP_DECODE if cfg.st_app else
        DecodeConfig(score_thresh=cfg.score_thresh, iou_thresh=cfg.iou_thresh, nms=cfg.nms,
                     max_candidates=cfg.max_candidates),
        specs=specs, onnx_layout=onnx_layout,
        onnx_specs=SPLIT_MAP_OUTPUTS if onnx_layout == "nchw" else specs,
        pad_mode=pad_mode, pad_choice=pad_choice, verify=verify, calib=calib,
        calib_methods={"onnx": cfg.calib_method, "tflite": tfl_method}, step=step)
    _report_images(plan)
    _report_channel_pad(plan)
    return plan


HOLDOUT_WARNING = "int8 verified on the built-in hold-out only (not camera frames)"


def _report_images(plan: ExportPlan) -> None:
    calib, cfg = plan.calib, plan.cfg
    if calib is not None:
        plan.step(f"calibration: {len(calib)} images from {calib.provenance.get('source')}"
                  + (f" ({calib.provenance['skipped']} unreadable skipped)"
                     if calib.provenance.get("skipped") else ""))
        if calib.provenance.get("default_used"):
            plan.warnings.append("calibrated on the built-in generic face images: calibrate on "
                                 "your own images (--calib DIR|CSV|COCO) for a real deployment")
    if cfg.int8 and "tflite" in cfg.formats and plan.calib_methods["tflite"] != cfg.calib_method:
        plan.warnings.append(f"calib_method {cfg.calib_method}: the TF Lite converter has no "
                             f"such method; the int8 TFLite uses minmax (recorded per format)")
    note = plan.verify.provenance["note"]
    plan.step(f"verification: {len(plan.verify)} images ({note.split(':')[0]})")
    if cfg.int8 and note == BUILTIN_HOLDOUT_NOTE:
        plan.warnings.append(HOLDOUT_WARNING + ": check on your own frames with "
                             "'blazeear-edge parity EXPORT --images DIR'")


def _report_coverage(plan: ExportPlan) -> dict | None:
    """Which face sizes (overall, per head) the verification images showed the reference; a
    warning about the hold-out says it too (see :mod:`blazeear_edge.coverage`)."""
    from ..coverage import coverage_sentence, domain_coverage

    if plan.ref_outputs is None:
        return None
    cov = domain_coverage(plan.ref_outputs, plan.specs, plan.anchors.table, plan.decode)
    text = coverage_sentence(cov)
    plan.step(f"verification covered: {text}")
    plan.warnings[:] = [w + f"; what it covered: {text}" if w.startswith(HOLDOUT_WARNING)
                        else w for w in plan.warnings]
    return cov


def _report_channel_pad(plan: ExportPlan) -> None:
    pred = plan.pad_choice.get("predicted")
    if not pred:
        plan.step(f"channel padding: '{plan.pad_mode}' ({plan.pad_choice['reason']})")
        return
    base = pred["pad"]
    plan.pad_choice["extra_vs_pad"] = {
        k: {"macc": v["macc"] - base["macc"],
            "weights_bytes_fp32": v["weights_bytes"] - base["weights_bytes"]}
        for k, v in pred.items()}
    desc = "; ".join(
        f"{k}: {sum(v['epochs'].values())} epochs ({v['epochs']['hybrid']} hybrid), "
        f"+{v['macc'] - base['macc']:,} MACs, +{v['weights_bytes'] - base['weights_bytes']:,} B"
        for k, v in pred.items())
    plan.step(f"channel padding: '{plan.pad_mode}' ({plan.pad_choice['reason']}; {desc})")


def choose_channel_pad(model, opset: int, outputs: str,
                       layout: str = "anchors") -> tuple[str, dict]:
    """Lint every channel-padding rewrite and keep the one with the lowest predicted cost."""
    costs = {}
    for mode in ("pad", "concat", "conv"):
        m = export_onnx(model, None, opset=opset, outputs=outputs, channel_pad=mode,
                        layout=layout)
        rep = lint_model(m, assume_int8=True)  # as it will be once quantised
        costs[mode] = {"cost": float(rep.mapping.cost), "epochs": rep.mapping.epochs,
                       "macc": rep.macc, "weights_bytes": rep.weights_bytes}
    best = min(costs, key=lambda k: (costs[k]["cost"], costs[k]["macc"]))
    return best, {"predicted": costs, "reason": "lowest linter cost, then fewest MACs"}


# ---------------------------------------------------------------------------------------------
# stages
# ---------------------------------------------------------------------------------------------
def verify_artifact(plan: ExportPlan, path: Path, key: str, label: str, precision: str,
                    raw: list, specs) -> RuntimeResult:
    """Judge one artifact's outputs on the verification images against PyTorch (compare)."""
    res = RuntimeResult(key, label, precision, key.split("_")[1], reference_label="pytorch fp32")
    compare_runtime(res, plan.ref_outputs, plan.specs, raw, specs, plan.anchors.table,
                    plan.decode, plan.tolerances.for_precision(precision))
    if precision == "int8" and plan.torch_ref is not None and res.match is not None:
        if plan.noise_ladder is None:
            ref_dets = [decode_outputs(r, plan.anchors.table, plan.decode, plan.specs)
                        for r in plan.ref_outputs]
            plan.noise_ladder = noise_floor.noise_ladder(
                lambda x: run_torch(plan.torch_ref, x, plan.specs), plan.verify.nchw,
                plan.ref_outputs, ref_dets, plan.specs, plan.anchors.table, plan.decode)
        res.noise_equivalent = noise_floor.equivalent_level(
            noise_floor.disturbance_of(res.match, res.worst_sqnr_db), plan.noise_ladder)
    plan.step(f"{label}: {res.summary()}")
    if res.error or (res.failures and precision == "fp32"):
        raise BlazeEarError(f"{path.name}: verification failed: "
                            + "; ".join([res.error] if res.error else res.failures), exit_code=1)
    plan.warnings += res.failures
    plan.warnings += res.alerts  # a large change at the deployed threshold; a binding cap
    low = [f"{t.name} {t.sqnr_db_relevant:.1f}" for t in res.tensors
           if t.sqnr_db_relevant is not None and any(f"output {t.name}:" in w
                                                     for w in res.warnings)]
    if low:
        plan.warnings.append(f"{label}: SQNR on relevant anchors (fp32 score >= "
                             f"{RELEVANT_SCORE}) under "
                             f"{plan.tolerances.for_precision(precision).warn_sqnr_db:g} dB: "
                             + ", ".join(low) + " dB")
    return res


def _add(plan: ExportPlan, key: str, path: Path, fmt: str, precision: str, inp: InputEntry,
         outputs: list, res: RuntimeResult) -> None:
    plan.artifacts[key] = ArtifactEntry(key, path.name, fmt, precision, path.stat().st_size,
                                        sha256_file(path), inp, tuple(outputs), res.record())


def _onnx_input() -> InputEntry:
    return InputEntry(INPUT_NAME, (1, 3, 128, 128), "NCHW", "float32")


def onnx_fp32(plan: ExportPlan) -> None:
    """Float ONNX (post-processing removed), verified against PyTorch."""
    path = plan.path("fp32.onnx")
    m = export_onnx(plan.model, path, opset=plan.cfg.opset, outputs=plan.cfg.outputs,
                    channel_pad=plan.pad_mode, layout=plan.onnx_layout)
    plan.step(f"ONNX fp32: {len(m.graph.node)} nodes {op_counts(m)}")
    torch_ref = _torch_reference(plan.reference, plan.cfg.outputs)
    plan.ref_outputs = run_torch(torch_ref, plan.verify.nchw, plan.specs)
    plan.torch_ref = torch_ref
    raw = run_onnx(onnx_session(path), plan.verify.nchw, plan.onnx_specs)  # anchor order
    res = verify_artifact(plan, path, "fp32_onnx", "ONNX fp32", "fp32", raw, plan.onnx_specs)
    _add(plan, "fp32_onnx", path, "onnx", "fp32", _onnx_input(),
         [OutputEntry(s) for s in plan.onnx_specs], res)


def onnx_int8(plan: ExportPlan) -> None:
    """ORT QDQ per-channel int8 ONNX, verified; per-tensor error report."""
    fp32, path, cfg = plan.path("fp32.onnx"), plan.path("int8.onnx"), plan.cfg
    plan.step(f"quantising ONNX (QDQ, per-channel int8, {cfg.calib_method}, "
              f"{len(plan.calib)} images) ...")
    score_range = cfg.int8_score_range()
    scores = [s.name for s in plan.specs if s.kind == "scores"]
    kw = dict(global_range_outputs=[] if score_range else scores,
              fixed_output_ranges={n: score_range for n in scores} if score_range else None)
    with tempfile.TemporaryDirectory(dir=plan.root) as td:
        src, overrides = fp32, None
        if plan.int8_model is not None:  # the on-grid float model, its grid pinned for ORT
            src = Path(td) / "ongrid.onnx"
            export_onnx(plan.int8_model, src, opset=cfg.opset, outputs=cfg.outputs,
                        channel_pad=plan.pad_mode, layout=plan.onnx_layout)
            overrides = weight_overrides(src)
            _record_nearest(plan, fp32, Path(td) / "nearest_int8.onnx", kw)
        quantize_onnx(src, path, plan.calib.nchw, cfg.calib_method, INPUT_NAME,
                      weight_overrides=overrides, **kw)
    oq = onnx_output_quantization(path)
    raw = run_onnx(path, plan.verify.nchw, plan.onnx_specs)
    res = verify_artifact(plan, path, "int8_onnx", "ONNX int8", "int8", raw, plan.onnx_specs)
    if plan.weights_report is not None:
        plan.weights_report["after"] = _parity_figures(res)
    outs = [OutputEntry(s, {"dtype": "int8", "scale": oq[s.name][0],
                            "zero_point": oq[s.name][1]} if s.name in oq else None)
            for s in plan.onnx_specs]
    _add(plan, "int8_onnx", path, "onnx", "int8", _onnx_input(), outs, res)
    plan.step("per-tensor quantisation error (onnxruntime qdq_loss_debug) ...")
    rec = res.record()
    plan.quant_report["onnx"] = {
        "outputs_sqnr_db": rec["sqnr_db"], "outputs_sqnr_db_all_anchors":
            rec["sqnr_db_all_anchors"], "images": min(8, len(plan.verify)),
        "tensors": activation_sqnr(fp32, path, plan.verify.nchw[:8], INPUT_NAME)}


def prepare_int8_weights(plan: ExportPlan) -> None:
    """The int8 weight levers (:mod:`blazeear_edge.quantize.rounding`, then optionally
    :mod:`blazeear_edge.quantize.qat`): the model with every conv weight on the per-channel int8
    grid both quantisers recompute, so what was learned reaches the ONNX and the TFLite artifact
    alike. Nothing for plain round-to-nearest without bias correction or fine-tuning (the
    quantisers then round by themselves)."""
    cfg = plan.cfg
    if cfg.weight_rounding == "nearest" and not cfg.bias_correction and not cfg.qat_steps:
        return
    what = (f"AdaRound {cfg.rounding_iterations} iterations/layer"
            if cfg.weight_rounding == "adaround" else "round-to-nearest")
    plan.step(f"int8 weights: {what}{' + bias correction' if cfg.bias_correction else ''} "
              f"(fp32 model as teacher, {min(len(plan.calib), 64)} calibration images) ...")
    prepared = prepare_weights(plan.model, plan.calib.nchw, cfg.weight_rounding,
                               cfg.rounding_iterations, cfg.bias_correction,
                               progress=cfg.progress)
    plan.step(f"int8 weights ready in {prepared.report['seconds']:.1f} s")
    if cfg.qat_steps:
        plan.step(f"int8 fine-tuning: {cfg.qat_steps} steps through the simulated int8 graph, "
                  f"distilled from fp32 on {len(plan.calib)} calibration images ...")
        tuned = finetune(plan.model, prepared.model, plan.calib.nchw, cfg.qat_steps,
                         score_range=cfg.int8_score_range() or (-16.0, 16.0), seed=cfg.seed,
                         progress=cfg.progress)
        sim = tuned.report["simulated_on_calibration"]
        plan.step(f"int8 fine-tuning done in {tuned.report['seconds']:.0f} s (simulated score "
                  f"KL on the calibration images {sim['before']['kl']:.3f} -> "
                  f"{sim['after']['kl']:.3f})")
        prepared.model = tuned.model
        prepared.report["qat"] = tuned.report
    plan.int8_model, plan.weights_report = prepared.model, prepared.report


def _parity_figures(res: RuntimeResult) -> dict:
    rec = res.record()
    return {"sqnr_db": rec["sqnr_db"], "detections": rec.get("detections"),
            "verdict": rec["verdict"]}


def _record_nearest(plan: ExportPlan, fp32: Path, path: Path, kw: dict) -> None:
    """The int8 ONNX with round-to-nearest weights and the same calibration, judged on the same
    images: the "before" of the weight rounding's record."""
    quantize_onnx(fp32, path, plan.calib.nchw, plan.cfg.calib_method, INPUT_NAME, **kw)
    res = RuntimeResult("int8_onnx", "ONNX int8 (nearest)", "int8", "onnx")
    compare_runtime(res, plan.ref_outputs, plan.specs,
                    run_onnx(path, plan.verify.nchw, plan.onnx_specs), plan.onnx_specs,
                    plan.anchors.table, plan.decode, plan.tolerances.int8)
    plan.weights_report["before"] = {
        "what": "int8 ONNX with round-to-nearest weights, same calibration",
        **_parity_figures(res)}


def tflite_stages(plan: ExportPlan) -> None:
    """onnx2tf (offline, our calibration images) -> fp32 TFLite; then the int8 TFLite."""
    plan.step("converting to TFLite with onnx2tf (offline, our calibration images) ...")
    with tempfile.TemporaryDirectory(dir=plan.root) as td:
        # onnx2tf rewrites its input file in place (onnxsim): hand it a copy, in the anchor
        # layout (NHWC heads reshape to anchor order with no transpose in TFLite)
        src = Path(td) / plan.path("fp32.onnx").name
        if plan.onnx_layout == "anchors":
            shutil.copyfile(plan.path("fp32.onnx"), src)
        else:
            export_onnx(plan.model, src, opset=plan.cfg.opset, outputs=plan.cfg.outputs,
                        channel_pad=plan.pad_mode, layout="anchors")
        with quiet_native_output(not plan.cfg.verbose):
            saved, f32 = onnx_to_tflite(src, Path(td) / "tf", plan.calib.nhwc)
        shutil.copyfile(f32, plan.path("fp32.tflite"))
        tflite_artifact(plan, "fp32_tflite", "TFLite fp32", "fp32")
        if plan.cfg.int8 and plan.int8_model is not None and not plan.cfg.camera_input:
            # the same on-grid weights as the int8 ONNX (camera input folds its own model)
            src2 = Path(td) / "ongrid" / src.name
            src2.parent.mkdir()
            export_onnx(plan.int8_model, src2, opset=plan.cfg.opset, outputs=plan.cfg.outputs,
                        channel_pad=plan.pad_mode, layout="anchors")
            with quiet_native_output(not plan.cfg.verbose):
                saved, _ = onnx_to_tflite(src2, Path(td) / "tf_ongrid", plan.calib.nhwc)
        if plan.cfg.int8:
            tflite_int8(plan, saved)


def tflite_int8(plan: ExportPlan, saved_model: Path) -> None:
    """TF Lite converter full-integer int8 (per-channel weights, int8 outputs), verified."""
    cfg = plan.cfg
    plan.step(f"quantising TFLite (full-integer, per-channel, input {cfg.input_type}"
              f"{' camera-exact' if cfg.camera_input else ''}, int8 outputs"
              f"{' in ST order' if cfg.output_order == 'st' else ''}, "
              f"{plan.calib_methods['tflite']}, {len(plan.calib)} images) ...")
    calib, in_range = plan.calib.nhwc, None
    score_range = cfg.int8_score_range()
    with tempfile.TemporaryDirectory(dir=plan.root) as td:
        if cfg.camera_input:  # the folded model (input y = p / 255), its own SavedModel
            saved_model, calib, in_range = _camera_saved_model(plan, Path(td)), \
                calibration_to_camera(plan.calib.nhwc), (0.0, 1.0)
        with quiet_native_output(not cfg.verbose):
            blob = quantize_tflite(saved_model, calib, cfg.input_type,
                                   plan.calib_methods["tflite"], score_range=score_range,
                                   input_range=in_range)
    if cfg.output_order == "st":
        blob = reorder_tflite_outputs(blob)
    plan.path("int8.tflite").write_bytes(blob)
    check_int8_tflite(plan.path("int8.tflite"))
    rec = tflite_artifact(plan, "int8_tflite", "TFLite int8", "int8")
    plan.quant_report["tflite"] = {"outputs_sqnr_db": rec["sqnr_db"],
                                   "outputs_sqnr_db_all_anchors": rec["sqnr_db_all_anchors"]}
    if cfg.camera_input or cfg.output_order == "st" or cfg.score_range or cfg.st_app:
        plan.st_app = st_app_record(cfg, plan.artifacts["int8_tflite"])
    if plan.decode.st_prefilter:
        plan.warnings += prefilter_warnings(plan.decode,
                                            plan.artifacts["int8_tflite"].output_specs())


def _camera_saved_model(plan: ExportPlan, td: Path) -> Path:
    """onnx2tf SavedModel (in ``td``) of the camera-input fold of the exported model (stapp)."""
    folded = fold_camera_input(plan.int8_model if plan.int8_model is not None else plan.model)
    src = td / "camera.onnx"
    export_onnx(folded, src, opset=plan.cfg.opset, outputs=plan.cfg.outputs,
                channel_pad=plan.pad_mode, layout="anchors")
    with quiet_native_output(not plan.cfg.verbose):
        saved, _ = onnx_to_tflite(src, td / "tf", calibration_to_camera(plan.calib.nhwc))
    return saved


def tflite_artifact(plan: ExportPlan, key: str, label: str, precision: str) -> dict:
    """Read back what a written TFLite file has, verify it, add it to the plan."""
    path = plan.path(key.split("_")[0] + ".tflite")
    inp, outs = tflite_io(path, plan.specs)
    entries = [OutputEntry.from_dict(o, str(path), "outputs") for o in outs]
    raw = run_tflite(path, plan.verify.nhwc, [e.spec for e in entries])
    res = verify_artifact(plan, path, key, label, precision, raw, [e.spec for e in entries])
    if inp["dtype"] != "float32":
        inp["camera_mapping"] = camera_mapping(inp["scale"], inp["zero_point"], inp["dtype"])
    _add(plan, key, path, "tflite", precision, InputEntry.from_dict(inp, str(path), "input"),
         entries, res)
    return res.record()


def lint_artifacts(plan: ExportPlan) -> None:
    """``lint_<artifact>.json`` per artifact and a summary; ``--strict`` fails on an error."""
    out = {}
    lines = _stedgeai(plan)
    for k, a in plan.artifacts.items():
        # int8: estimate the compile the manifest tells the user to run (its stedgeai line)
        cmd = {"int8_tflite": lines["generate"], "int8_onnx": lines["generate_onnx"]}.get(k)
        d = lint_model(plan.root / a.path, stedgeai_command=cmd).to_dict()
        d["model"] = a.path  # relative: the folder may move
        write_json_atomic(plan.root / f"lint_{k}.json", d)
        s = d["summary"]
        out[k] = {"verdict": "errors" if s["errors"] else ("warnings" if s["warnings"]
                                                           else "clean"),
                  "file": f"lint_{k}.json", "errors": s["errors"], "warnings": s["warnings"],
                  "epochs": d.get("mapping", {}).get("epochs"), "macc": d.get("macc"),
                  "rules": sorted({f["rule"] for f in d["findings"]
                                   if f["severity"] in ("error", "warning")})}
        if k.startswith("int8") and d.get("inference_ms") is not None:
            # predicted STM32N6570-DK time of the compile above (lint/latency.py) and its band
            out[k]["inference_ms"] = d["inference_ms"]
            out[k]["inference_ms_band"] = d["inference_ms_band"]
    plan.step("lint: " + ", ".join(f"{k} {v['verdict']}" for k, v in out.items()))
    plan.lint = out
    bad = {k: v["rules"] for k, v in out.items() if v["errors"]}
    if plan.cfg.strict and bad:
        raise BlazeEarError("--strict: the linter found errors: " + "; ".join(
            f"{k}: {', '.join(v)}" for k, v in bad.items()), exit_code=1)


def write_manifest(plan: ExportPlan) -> ExportManifest:
    """Side files (anchors, calibration, quantisation report) and the typed manifest."""
    from ..model import count_parameters

    cfg, root = plan.cfg, plan.root
    coverage = _report_coverage(plan)
    np.save(root / "anchors.npy", plan.anchors.table)
    calib_info = None
    if plan.calib is not None:
        save_npz(plan.calib, root / "calib.npz")
        calib_info = {**plan.calib.provenance, "file": "calib.npz",
                      "method": dict(plan.calib_methods)}
        if plan.weights_report is not None:
            calib_info["weights"] = {k: v for k, v in plan.weights_report.items()
                                     if k != "layers"}
            plan.quant_report["weights"] = plan.weights_report
    if plan.quant_report:
        write_json_atomic(root / "quant_report.json", plan.quant_report)
    int8 = [k for k in ("int8_tflite", "int8_onnx") if k in plan.artifacts]
    man = ExportManifest(
        name=plan.name,
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model=ModelEntry(plan.info.kind, plan.info.description, plan.info.source,
                         plan.info.sha256, count_parameters(plan.model),
                         bool(plan.info.batchnorm), plan.info.notes),
        tools=tool_versions(),
        input={"name": INPUT_NAME, "shape": [1, 3, 128, 128],
               "layout": "NCHW (ONNX), NHWC (TFLite)", "dtype": "float32",
               "normalization": {"scale": 1 / 127.5, "offset": -1.0,
                                 "formula": "x = p / 127.5 - 1 for RGB pixel p in 0..255",
                                 "letterbox": "centred, aspect kept, border p = 0 (x = -1)"}},
        artifacts=plan.artifacts,
        anchors_info={"kind": plan.anchors.kind, "source": plan.anchors.source,
                      "file": "anchors.npy", "sha256": sha256_file(root / "anchors.npy"),
                      "count": int(len(plan.anchors.table)),
                      "columns": ["x_center", "y_center", "w", "h"]},
        decode=plan.decode, calibration=calib_info,
        export=ExportEntry(cfg.outputs, plan.onnx_layout, plan.pad_mode, plan.pad_choice,
                           cfg.logit_saturation, getattr(plan.model, "equalization", None),
                           cfg.opset, cfg.input_type, tuple(cfg.formats), cfg.int8,
                           cfg.int8_score_range() if cfg.int8 else None),
        verification={"images": len(plan.verify), "source": plan.verify.provenance,
                      **({"coverage": coverage} if coverage else {}),
                      "reference": "pytorch fp32", "tolerances": plan.tolerances.to_dict(),
                      **{k: a.verification for k, a in plan.artifacts.items()}},
        lint=plan.lint,
        stedgeai=_stedgeai(plan) if int8 else None, st_app=plan.st_app,
        root=root)
    write_json_atomic(root / MANIFEST_FILE, man.to_dict())
    if plan.cfg.st_app:
        write_st_app_package(man, root / "st_app")
    return man


def _stedgeai(plan: ExportPlan) -> dict:
    return {**({"generate_st_app": stedgeai_st_app_command(f"{plan.name}_int8.tflite")}
               if plan.cfg.st_app else {}),
            "camera_note": "the int8 TFLite takes camera bytes exactly (q = p, see "
                           "artifacts.int8_tflite.input.camera_mapping); the ONNX files keep the "
                           "float input x = p / 127.5 - 1" if plan.cfg.camera_input else
                           "with this input, --input-data-type uint8 feeds camera bytes p as "
                           "q = p + offset, which is not the host's p / 127.5 - 1 (half an input "
                           "step off); export with --camera-input or --st-app for camera bytes",
            "generate": stedgeai_command(f"{plan.name}_int8.tflite", plan.cfg.input_type),
            "generate_onnx": (stedgeai_command(f"{plan.name}_int8.onnx", "float32")
                              + " --outputs-ch-position chlast")
            if "int8_onnx" in plan.artifacts else None,
            "note": "ST Edge AI Core cannot run here; user_neuralart.json is ST's Neural-ART "
                    "profile file from the model zoo. For the ONNX model, --outputs-ch-position "
                    "chlast makes the head maps arrive in anchor order (what the C "
                    "post-processing reads)"}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _torch_reference(model, outputs):
    from ..model import MediaPipeLayout

    return MediaPipeLayout(model).eval() if outputs == "concat" else model.eval()


def _n6_ms(rec: dict) -> str:
    """The predicted N6 time of an int8 artifact, "3.05 ms (2.35-3.97)"; "-" for the others."""
    if rec.get("inference_ms") is None:
        return "-"
    lo, hi = rec.get("inference_ms_band") or (None, None)
    band = f" ({lo:.2f}-{hi:.2f})" if lo is not None else ""
    return f"{rec['inference_ms']:.2f} ms{band}"


def _summary_rows(plan: ExportPlan) -> list[dict]:
    return [{"artifact": a.path, "size_kib": round(a.size_bytes / 1024, 1),
             "check": figure(a.verification),
             "lint": (plan.lint or {}).get(k, {}).get("verdict", "-"),
             "n6_ms": _n6_ms((plan.lint or {}).get(k, {}))}
            for k, a in plan.artifacts.items()]


__all__ = ["FORMATS", "ExportConfig", "ExportPlan", "ExportResult", "camera_mapping",
           "choose_channel_pad", "export", "format_summary", "make_plan", "stedgeai_command"]
