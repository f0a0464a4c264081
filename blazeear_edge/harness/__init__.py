"""The firmware harness: the C post-processing (``firmware_harness/``) configured from an export,
fed with test vectors, built for the host and for a Cortex-M55 (QEMU ``mps3-an547``), and
compared with the NumPy decode.

Pipeline (each step a function a user can call)::

    model   = harness_model(manifest)                     # int8 output specs, anchors, decode
    vectors = make_vectors(model, int8_outputs, ...)      # + synthetic_vectors(model)
    report  = run_harness(model, vectors, out_dir, targets=("host", "m55"))
    print(format_report(report)); report.ok

``read_device_log(path)`` parses the detection lines the C code prints (host, QEMU or the
board's UART); the format is documented in :mod:`blazeear_edge.harness.devicelog` and in
``firmware_harness/README.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BlazeEarError
from ..detect import Detector
from ..preprocess import preprocess
from ..runtimes import run_onnx, run_tflite
from .build import (APT_LINE, MAX_M55_VECTORS, Tools, build_board_stub, build_host, build_m55,
                    find_tools, firmware_dir, require, run_host, run_m55, write_tree)
from .compare import BOX_TOL, SCORE_TOL, FrameResult, compare_frame, compare_log
from .devicelog import DeviceFrame, DeviceLog, parse_device_log, read_device_log
from .model import HarnessModel, harness_model, model_header
from .vectors import (Vector, logged_names, make_vectors, minimal_manifest, quantize_outputs,
                      quantize_specs, save_vectors, synthetic_vectors, vectors_source,
                      write_expected)

TARGETS = ("host", "m55")

__all__ = [
    "APT_LINE", "BOX_TOL", "SCORE_TOL", "TARGETS", "DeviceFrame", "DeviceLog", "FrameResult",
    "HarnessModel", "HarnessReport", "Tools", "Vector", "build_board_stub", "build_host",
    "build_m55", "cap_summary",
    "compare_frame", "compare_log", "export_outputs", "integer_outputs", "find_tools", "firmware_dir",
    "format_report", "harness_model", "make_vectors", "minimal_manifest", "model_header",
    "parse_device_log", "prepare", "quantize_outputs", "quantize_specs", "read_device_log",
    "run_harness", "run_host", "run_m55", "synthetic_vectors", "torch_float_outputs",
    "vectors_source", "worst_case", "write_tree",
]


@dataclass
class HarnessReport:
    model: HarnessModel
    vectors: list
    out_dir: Path
    results: dict = field(default_factory=dict)  # target -> [FrameResult]
    logs: dict = field(default_factory=dict)  # target -> DeviceLog

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.match for rs in self.results.values() for r in rs)

    def bit_exact(self, target: str) -> bool:
        rs = self.results.get(target, [])
        return bool(rs) and all(r.bit_exact for r in rs)

    def max_errors(self, target: str) -> tuple[float, float]:
        rs = self.results.get(target, [])
        return (max((r.max_box_err for r in rs), default=0.0),
                max((r.max_score_err for r in rs), default=0.0))


def prepare(out_dir: str | os.PathLike, model: HarnessModel, vectors: Sequence[Vector]) -> Path:
    """Write the C tree (sources, ``blazeear_model.h``, ``blazeear_vectors.c``, Makefile) plus
    ``expected.json`` (NumPy detections) and ``vectors.npz`` (the int8 outputs) into out_dir."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BlazeEarError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    write_tree(out, model_header(model), vectors_source(model, vectors))
    write_expected(out / "expected.json", model, vectors)
    save_vectors(out / "vectors.npz", model, vectors)
    return out


def run_harness(model: HarnessModel, vectors: Sequence[Vector], out_dir: str | os.PathLike,
                targets: Sequence[str] = TARGETS, sanitize: bool = True,
                timeout: float = 180, tools: Tools | None = None) -> HarnessReport:
    """Prepare, build and run on each target, and compare every frame with NumPy."""
    bad = [t for t in targets if t not in TARGETS]
    if bad:
        raise BlazeEarError(f"unknown harness target(s) {bad}; use {', '.join(TARGETS)}")
    tools = tools or find_tools()
    for t in targets:  # fail on a missing tool before building anything
        require(tools, t)
    if "m55" in targets and len(vectors) > MAX_M55_VECTORS:
        raise BlazeEarError(f"{len(vectors)} test vectors; the Cortex-M55 image holds at most "
                            f"{MAX_M55_VECTORS} (use fewer images)")
    out = prepare(out_dir, model, vectors)
    report = HarnessReport(model, list(vectors), out)
    names = logged_names(vectors)
    for t in targets:
        if t == "host":
            text = run_host(build_host(out, sanitize, tools), timeout)
        else:
            text = run_m55(build_m55(out, tools), timeout, tools)
        log = parse_device_log(text, f"{t} device log")
        (out / f"device_{t}.log").write_text(text)
        report.logs[t] = log
        report.results[t] = compare_log(vectors, log, names)
    return report


# ---------------------------------------------------------------------------------------------
# where int8 outputs come from
# ---------------------------------------------------------------------------------------------
def export_outputs(manifest, model: HarnessModel, nhwc: np.ndarray,
                   nchw: np.ndarray | None = None) -> list[list[np.ndarray]]:
    """Run the export's int8 artifact (TFLite int8 outputs directly; an ONNX QDQ model's float
    outputs re-quantised with the scale and zero point of their DequantizeLinear)."""
    art = manifest.artifact(model.artifact)
    path = manifest.artifact_path(model.artifact)
    if not path.is_file():
        raise BlazeEarError(f"{path}: artifact {model.artifact} named by the manifest is missing")
    if art.format == "tflite":
        raw = run_tflite(path, nhwc, model.specs)
    else:
        if nchw is None:
            nchw = np.ascontiguousarray(np.asarray(nhwc).transpose(0, 3, 1, 2))
        raw = run_onnx(path, nchw, model.specs)
    return integer_outputs(model, raw)


def integer_outputs(model: HarnessModel, raw: list[dict]) -> list[list[np.ndarray]]:
    """A runtime's raw outputs as the integer arrays the C code takes, in the model's output
    order (ONNX QDQ float outputs re-quantised with their DequantizeLinear's scale and zero
    point, which gives back the integer tensor exactly)."""
    out = []
    for d in raw:
        arrs = [np.asarray(d[s.name]) for s in model.specs]
        if any(a.dtype.kind == "f" for a in arrs):
            arrs = quantize_outputs(arrs, model.specs)
        out.append(arrs)
    return out


def torch_float_outputs(images: Sequence[np.ndarray], weights: str = "mediapipe"):
    """The PyTorch model's four float outputs and the letterbox of each RGB image (to quantise
    with :func:`quantize_specs` / :func:`quantize_outputs` when there is no int8 export)."""
    det = Detector(weights)
    outs, lbs = [], []
    for img in images:
        x, lb = preprocess(img, "NCHW")
        outs.append(det.raw_outputs(x))
        lbs.append(lb)
    return outs, lbs, det.anchors.table


# ---------------------------------------------------------------------------------------------
# printing
# ---------------------------------------------------------------------------------------------
def cap_summary(model: HarnessModel, vectors: Sequence[Vector]):
    """What the model's candidate cap did on the vectors of real frames (not the hand-built
    ones, which test the cap on purpose): :class:`~blazeear_edge.capreport.CapStats`, or None
    without a cap. The uncapped decode is NumPy's, of the same integer outputs."""
    from ..capreport import CapStats, uncapped
    from ..postprocess import decode_outputs

    k = int(model.config.max_candidates)
    if not k:
        return None
    stats = CapStats(k)
    for v in vectors:
        if v.source == "hand-built" or v.config is not None:
            continue
        free = None
        if v.expected.cap_dropped > 0:
            free = decode_outputs(v.outputs, model.anchors, uncapped(model.config), model.specs,
                                  letterbox=v.letterbox)
        stats.add(v.expected, free, v.name)
    return stats if stats.frames else None


def _err(v: float) -> str:
    if v == float("inf"):
        return "-"
    return "0" if v == 0 else f"{v:.1e}"


def format_report(report: HarnessReport) -> str:
    targets = list(report.results)
    head = ["vector", "dets"] + ["max box err", "max score err"] + targets
    if "m55" in targets:
        head.append("M55 instr")
    rows = []
    for i, vec in enumerate(report.vectors):
        per = {t: report.results[t][i] for t in targets}
        got = {t: r.got for t, r in per.items()}
        dets = f"{len(vec.expected)}"
        if any(g != len(vec.expected) for g in got.values()):
            dets += " (C: " + "/".join("-" if g is None else str(g) for g in got.values()) + ")"
        box = max((r.max_box_err for r in per.values()), default=0.0)
        score = max((r.max_score_err for r in per.values()), default=0.0)
        name = vec.name if len(vec.name) <= 34 else "..." + vec.name[-31:]
        row = [name, dets, _err(box), _err(score)]
        for t in targets:
            r = per[t]
            row.append("exact" if r.match and r.bit_exact else ("yes" if r.match else "NO"))
        if "m55" in targets:
            ins = per["m55"].instructions
            row.append("-" if ins is None else f"{ins:,.0f}")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in rows]
    lines.append("")
    for t in targets:
        rs = report.results[t]
        frames = [r for r in rs if r.index >= 0 and r.name != "?"]
        nmatch = sum(r.match for r in frames)
        box, score = report.max_errors(t)
        verdict = ("identical to NumPy (bit-exact)" if report.bit_exact(t) and nmatch == len(frames)
                   else "matches NumPy within tolerance" if all(r.match for r in rs)
                   else "MISMATCH")
        where = "host (gcc, ASan+UBSan)" if t == "host" else "Cortex-M55 (QEMU mps3-an547)"
        lines.append(f"{where}: {nmatch}/{len(frames)} vectors match; {verdict}; "
                     f"max box/keypoint err {_err(box)}, max score err {_err(score)}")
        for r in rs:
            if r.problem:
                lines.append(f"  {t} {r.name}: {r.problem}")
    if "m55" in targets:
        real = [r for r, v in zip(report.results["m55"], report.vectors)
                if v.source != "hand-built" and r.instructions is not None]
        allr = [r for r in report.results["m55"] if r.instructions is not None]
        pick = real or allr
        if pick:
            ins = np.array([r.instructions for r in pick])
            dec = sum(r.instructions_decode or 0 for r in pick)
            nms = sum(r.instructions_nms or 0 for r in pick)
            tot = dec + nms
            what = "real images" if real else "all vectors"
            ipt = report.logs["m55"].instructions_per_tick()
            lines.append(
                f"M55 instructions per frame ({what}, QEMU -icount: instructions, not cycles; "
                f"{ipt:.2f} instr/SysTick tick): median {np.median(ins):,.0f}, max {ins.max():,.0f}"
                + (f"; decode {100 * dec / tot:.0f}% / NMS {100 * nms / tot:.0f}%" if tot else ""))
        worst = worst_case(report)
        if worst is not None:
            r, k = worst
            lines.append(f"M55 worst case ({r.name}: every anchor above the threshold, "
                         f"{r.expected} separate boxes; candidate cap {k or 'none'}): "
                         f"{r.instructions:,.0f} instructions")
    cap = cap_summary(report.model, report.vectors)
    if cap is not None:
        lines.append(("warning: " if cap.changed else "") + cap.sentence()
                     + " (image vectors, NumPy decode)")
    lines.append(f"files: {report.out_dir}")
    return "\n".join(lines)


#: The hand-built vector that is the M55 worst case (see ``synthetic_vectors``).
WORST_CASE_VECTOR = "all_above_disjoint"


def worst_case(report: HarnessReport):
    """(M55 result of the worst-case vector, its candidate cap), or None when not run."""
    for r, v in zip(report.results.get("m55", []), report.vectors):
        if v.name == WORST_CASE_VECTOR and r.instructions is not None:
            return r, (v.config or report.model.config).max_candidates
    return None
