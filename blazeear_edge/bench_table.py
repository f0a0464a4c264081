"""The ``bench`` table: its rows (:class:`BenchRow`), the result (:class:`BenchResult`), ST's
published reference row and the Markdown / CSV forms. :mod:`.bench` measures and fills them,
:mod:`.bench_plots` draws them; this module imports neither (no import cycle).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence


SCHEMA = "blazeear-edge/bench/1"
#: Artifact order in the table.
ARTIFACT_ORDER = ("fp32_onnx", "int8_onnx", "fp32_tflite", "int8_tflite")
BOARD = "STM32N6570-DK"
KIB = 1024

#: ST's published figures for its model zoo BlazeFace front 128 int8 on STM32N6570-DK
#: (ST Edge AI Core 3.0.0), see docs/st-edge-ai.md. The epoch split (45 = 23 hardware + 22 hybrid,
#: no software epoch) comes from ST's generate report of the same model.
ST_REFERENCE = {
    "label": "ST model zoo BlazeFace front 128 int8 (TFLite)",
    "inference_ms": 4.48,
    "internal_ram_bytes": 528 * KIB,  # 416 + 112 KiB in the NPU RAMs
    "weights_bytes": 108524,  # 105.98 KiB, in the external octo-SPI flash
    "epochs_hw": 23,
    "epochs_hybrid": 22,
    "epochs_sw": 0,
    "epochs_total": 45,
    "tool_version": "3.0.0",
    "board": BOARD,
    "source": "ST model zoo (stm32ai-modelzoo, face_detection/blazeface) README: 4.48 ms, "
              "528 KiB internal RAM, 105.98 KiB weights with ST Edge AI Core 3.0.0; epochs from "
              "ST's generate report of the same model (docs/st-edge-ai.md)",
}
PUBLISHED = "published, not measured here"

FILES = {
    "markdown": "bench.md",
    "csv": "bench.csv",
    "json": "bench.json",
    "accuracy_plot": "bench_accuracy_latency.png",
    "quant_plot": "bench_quant_error.png",
}

_LABELS = {"fp32_onnx": "fp32 ONNX", "int8_onnx": "int8 ONNX", "fp32_tflite": "fp32 TFLite",
           "int8_tflite": "int8 TFLite"}


@dataclass
class BenchRow:
    """One line of the table. ``None`` = not known (shown empty), never a guess."""

    artifact: str  #: manifest key (fp32_onnx, ...) or "st_reference"
    label: str  #: "int8 TFLite", ...
    file: str | None = None
    status: str = "ok"  #: ok | failed: ... | modified since export | published, not measured here
    size_bytes: int | None = None
    # -- linter (predictions for the STM32N6) ----------------------------------------------------
    params: int | None = None
    macc: int | None = None
    weights_bytes: int | None = None  #: flash estimate
    activations_peak_bytes: int | None = None  #: RAM estimate
    pred_epochs_hw: int | None = None
    pred_epochs_hybrid: int | None = None
    pred_epochs_sw: int | None = None
    lint: str | None = None  #: clean | warnings | errors
    #: predicted STM32N6570-DK inference time (ms) and its band (lint's latency model)
    pred_n6_ms: float | None = None
    pred_n6_ms_lo: float | None = None
    pred_n6_ms_hi: float | None = None
    # -- host latency on this machine ----------------------------------------------------------
    runtime: str | None = None  #: "onnxruntime 1.31.1" / "litert 2.3.0"
    host_ms_median: float | None = None
    host_ms_p90: float | None = None
    # -- accuracy -------------------------------------------------------------------------------
    sqnr_db: float | None = None  #: worst output, relevant anchors, vs PyTorch fp32 (manifest)
    sqnr_worst_output: str | None = None
    det_ref: int | None = None  #: detections of the fp32 reference
    det_matched: int | None = None
    det_extra: int | None = None
    det_match_rate: float | None = None
    det_mean_iou: float | None = None
    #: the verification's alerts (a large change at the deployed threshold, a candidate cap
    #: that changes the output), joined with "; " (see blazeear_edge.compare)
    det_alerts: str | None = None
    cap_frames_bound: int | None = None  #: verification frames on which the cap bound
    cap_frames_changed: int | None = None  #: ... on which it changed the output
    fp32_max_scaled_err: float | None = None  #: fp32 artifacts: vs their reference (manifest)
    map50: float | None = None  #: with --data
    # -- device (from ST's own outputs) ------------------------------------------------------------
    dev_inference_ms: float | None = None
    dev_internal_ram_bytes: int | None = None
    dev_external_ram_bytes: int | None = None
    dev_external_flash_bytes: int | None = None
    dev_weights_bytes: int | None = None
    dev_epochs_total: int | None = None
    dev_epochs_hw: int | None = None
    dev_epochs_hybrid: int | None = None
    dev_epochs_sw: int | None = None
    dev_tool_version: str | None = None
    dev_board: str | None = None
    dev_source: str | None = None  #: the ST file(s) the device columns came from

    @property
    def measured(self) -> bool:
        return self.status != PUBLISHED

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class BenchResult:
    """Everything ``bench`` measured or read; ``rows`` are the artifacts, ``reference`` ST's row."""

    export_dir: Path
    name: str
    rows: list[BenchRow]
    reference: BenchRow
    machine: dict
    runs: int
    warmup: int
    accuracy: dict  #: what the parity / mAP columns were measured on
    notes: list[str] = field(default_factory=list)
    files: dict = field(default_factory=dict)  #: kind -> written path
    quant_tensors: list[dict] = field(default_factory=list)  #: quant_report onnx.tensors
    created: str = ""

    @property
    def all_rows(self) -> list[BenchRow]:
        return [*self.rows, self.reference]

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "name": self.name, "created": self.created,
                "export_dir": str(self.export_dir), "machine": self.machine, "runs": self.runs,
                "warmup": self.warmup, "accuracy": self.accuracy,
                "rows": [r.to_dict() for r in self.rows],
                "reference": self.reference.to_dict(), "notes": list(self.notes),
                "files": {k: str(v) for k, v in self.files.items()}}

    def markdown(self, heading: str | None = "") -> str:
        return format_markdown(self, heading)

    def csv_text(self) -> str:
        return format_csv(self.all_rows)




def reference_row() -> BenchRow:
    r = ST_REFERENCE
    return BenchRow(artifact="st_reference", label=r["label"], status=PUBLISHED,
                    dev_inference_ms=r["inference_ms"],
                    dev_internal_ram_bytes=r["internal_ram_bytes"],
                    dev_weights_bytes=r["weights_bytes"], dev_epochs_total=r["epochs_total"],
                    dev_epochs_hw=r["epochs_hw"], dev_epochs_hybrid=r["epochs_hybrid"],
                    dev_epochs_sw=r["epochs_sw"], dev_tool_version=r["tool_version"],
                    dev_board=r["board"], dev_source=r["source"])


# ------------------------------------------------------------------------------------------------
# formatting

#: (header, cell) for the Markdown table, in order; the mAP column only appears with --data.
def _columns(with_map: bool):
    def kib(v):
        return "" if v is None else f"{v / KIB:.1f}"

    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    def epochs(hw, hyb, sw):
        if hw is None and hyb is None and sw is None:
            return ""
        return "/".join("?" if v is None else str(v) for v in (hw, hyb, sw))

    def sqnr(r):
        if r.sqnr_db is not None:
            return f"{r.sqnr_db:.1f}"
        return "fp32 ref." if r.fp32_max_scaled_err is not None else ""

    def parity(r):
        if r.det_ref is not None:
            cell = f"{r.det_matched}/{r.det_ref} ({r.det_extra:+d})" if r.det_extra is not None \
                else f"{r.det_matched}/{r.det_ref}"
            return cell + (" WARNING" if r.det_alerts else "")
        return "fp32 ref." if r.fp32_max_scaled_err is not None else ""

    cols = [
        ("artifact", lambda r: r.label),
        ("status", lambda r: r.status),
        ("size KiB", lambda r: kib(r.size_bytes)),
        ("params", lambda r: num(r.params, ",d")),
        ("MMAC", lambda r: "" if r.macc is None else f"{r.macc / 1e6:.2f}"),
        ("weights KiB (pred.)", lambda r: kib(r.weights_bytes)),
        ("act. peak KiB (pred.)", lambda r: kib(r.activations_peak_bytes)),
        ("epochs HW/hyb/SW (pred.)",
         lambda r: epochs(r.pred_epochs_hw, r.pred_epochs_hybrid, r.pred_epochs_sw)),
        ("lint", lambda r: r.lint or ""),
        ("predicted N6 ms", lambda r: "" if r.pred_n6_ms is None else
         f"{r.pred_n6_ms:.2f} ({r.pred_n6_ms_lo:.2f}-{r.pred_n6_ms_hi:.2f})"),
        ("host ms median", lambda r: num(r.host_ms_median, ".3f")),
        ("host ms p90", lambda r: num(r.host_ms_p90, ".3f")),
        ("SQNR dB", sqnr),
        ("det. parity", parity),
    ]
    if with_map:
        cols.append(("mAP@0.5", lambda r: num(r.map50, ".3f")))
    cols += [
        ("N6 ms", lambda r: num(r.dev_inference_ms, ".2f")),
        ("N6 int. RAM KiB", lambda r: kib(r.dev_internal_ram_bytes)),
        ("N6 ext. flash KiB", lambda r: kib(r.dev_external_flash_bytes)),
        ("N6 weights KiB", lambda r: "" if r.dev_weights_bytes is None
         else f"{r.dev_weights_bytes / KIB:.2f}"),
        ("N6 epochs HW/hyb/SW", lambda r: epochs(r.dev_epochs_hw, r.dev_epochs_hybrid,
                                                 r.dev_epochs_sw)),
        ("ST Edge AI", lambda r: r.dev_tool_version or ""),
    ]
    return cols


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[BenchRow], with_map: bool = False) -> str:
    """A GitHub Markdown table; every line has the same number of cells."""
    cols = _columns(with_map)
    right = {i for i, (h, _) in enumerate(cols) if h not in ("artifact", "status", "lint",
                                                             "ST Edge AI")}
    head = "| " + " | ".join(h for h, _ in cols) + " |"
    sep = "|" + "|".join("---:" if i in right else "---" for i in range(len(cols))) + "|"
    body = ["| " + " | ".join(_md_cell(f(r)) for _, f in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def format_markdown(res: BenchResult, heading: str | None = "") -> str:
    m = res.machine
    acc = res.accuracy
    with_map = acc.get("data") is not None
    lines = []
    if heading is not None:
        lines += [f"## {heading or 'Benchmark: ' + res.name}", ""]
    lines.append(
        f"Host: {m['cpu']} ({m['cores']} cores), one thread; ONNX Runtime {m['onnxruntime']}, "
        f"LiteRT {m['litert']} ({m['tflite_kernels']}); median and p90 of {res.runs} timed "
        f"inferences after {res.warmup} warm-up runs (batch 1, runtime call only).")
    lines.append("")
    lines.append(markdown_table(res.all_rows, with_map))
    lines.append("")
    rel = acc.get("sqnr_relevant_score")
    lines.append(
        f"- SQNR and det. parity: recorded by the export's verification against "
        f"{acc['parity_reference']} on {acc.get('parity_images')} images "
        f"({acc.get('parity_source')}). SQNR is the worst of "
        f"the outputs" + (f", over anchors whose fp32 score is at least {rel}" if rel else "") +
        "; parity is fp32 detections matched at IoU 0.5 (extra detections in brackets).")
    fp32 = [r for r in res.rows if r.fp32_max_scaled_err is not None]
    if fp32:
        lines.append("- fp32 rows are the reference: " + "; ".join(
            f"{r.label} within {r.fp32_max_scaled_err:.1e} (scaled max error) of its reference"
            for r in fp32) + ".")
    if with_map and any(r.map50 is not None for r in res.rows):
        lines.append(f"- mAP@0.5 on {acc['data']}"
                     + (f" ({acc['map_images']} images)" if acc.get("map_images") else "") + ".")
    lines.append("- (pred.) = predicted for the STM32N6 by `blazeear-edge lint` (flash = weights, "
                 "RAM = peak activations); epochs are hardware / hybrid / software.")
    lines.append("- predicted N6 ms: `blazeear-edge lint`'s latency model (STM32N6570-DK, NPU "
                 "1000 MHz / CPU 800 MHz, as ST's published figures), in brackets the band of its "
                 "held-out error against ST's published times (benchmarks/README.md).")
    lines.append("- N6 columns (STM32N6570-DK): from ST's own files only, never estimated: "
                 + ("; ".join(f"{r.label}: {r.dev_source}" for r in res.rows if r.dev_source)
                    or "none given, so they are empty (pass `--st-report` with ST Edge AI's "
                    "network_c_info.json, network_generate_report.txt or the result JSON of "
                    "`blazeear-edge cloud benchmark`)") + ".")
    lines.append(f"- {res.reference.label}: {PUBLISHED} ({res.reference.dev_source}).")
    for n in res.notes:
        lines.append(f"- {n}" if n.startswith("WARNING") else f"- Note: {n}.")
    return "\n".join(lines) + "\n"


def format_csv(rows: Sequence[BenchRow]) -> str:
    names = [f.name for f in fields(BenchRow)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    for r in rows:
        w.writerow(["" if getattr(r, n) is None else getattr(r, n) for n in names])
    return buf.getvalue()
