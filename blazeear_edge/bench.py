"""``bench``: one table per export, host numbers measured here next to the device numbers ST's
own tools wrote, in the style of ``yolo benchmark``.

One row per artifact of an export (fp32/int8 x ONNX/TFLite):

* static figures: file size; parameters, MACs, weight bytes (flash estimate), peak activation bytes
  (RAM estimate), predicted N6 epochs (hardware / hybrid / software) and the verdict of the
  linter (:mod:`blazeear_edge.lint`; left empty when the linter is not installed);
* host latency on this machine: ONNX Runtime or the TFLite interpreter, one thread, median and p90
  of ``runs`` timed inferences after a warm-up;
* accuracy: output SQNR and detection parity against PyTorch fp32 as the export measured and
  recorded them in its manifest (not recomputed here), and mAP@0.5 on ``data`` when it is given
  (:mod:`blazeear_edge.evaluate`);
* device columns (STM32N6570-DK inference time, internal RAM, external flash, weights, epochs,
  ST Edge AI Core version) read by :func:`blazeear_edge.streports.read_st_report` from ST's own
  files, and left empty when none is given: nothing is estimated or invented.

A last row holds ST's published figures for its own BlazeFace front 128 int8 on STM32N6570-DK,
marked "published, not measured here".

:func:`run_bench` returns a :class:`BenchResult` and, given ``out_dir``, writes ``bench.md``,
``bench.csv``, ``bench.json``, ``bench_accuracy_latency.png`` and ``bench_quant_error.png``, each
one atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import BlazeEarError
from .lint import lint_model
from .manifest import Manifest, load_manifest, write_json_atomic
from . import evaluate as ev
from .runtimes import package_version, time_artifact
from .bench_plots import plot_accuracy_latency, plot_quant_error
from .streports import read_st_report
from .weights import sha256_file
from .bench_table import (ARTIFACT_ORDER, BOARD, FILES, KIB, PUBLISHED, SCHEMA,  # noqa: F401
                          ST_REFERENCE, _LABELS, BenchResult, BenchRow, format_csv,
                          format_markdown, markdown_table, reference_row)

# ------------------------------------------------------------------------------------------------
# library entry point


def run_bench(export_dir: str | os.PathLike, data: str | os.PathLike | None = None,
              st_reports: Sequence[str | os.PathLike] = (), runs: int = 50,
              out_dir: str | os.PathLike | None = None, progress: bool = True,
              warmup: int | None = None, images_root: str | os.PathLike | None = None
              ) -> BenchResult:
    """Benchmark every artifact of ``export_dir``; see the module docstring.

    ``st_reports``: ST output files (``network_c_info.json``, ``network_generate_report.txt`` /
    ``network_analyze_report.txt``, a Developer Cloud result JSON), each optionally prefixed with
    the artifact it describes (``int8_tflite=FILE``); without a prefix a file goes to the artifact
    whose file name it mentions, else to the int8 TFLite (the model ST's N6 flow compiles). Several
    files for one artifact are merged (the first that states a field wins).
    ``warmup``: untimed runs first (default ``min(10, max(2, runs // 5))``).
    """
    if runs < 1:
        raise BlazeEarError(f"runs (--runs) must be at least 1, got {runs}")
    warmup = min(10, max(2, runs // 5)) if warmup is None else max(0, int(warmup))
    man = load_manifest(export_dir)
    keys = [k for k in ARTIFACT_ORDER if k in man.artifacts]
    keys += [k for k in man.artifacts if k not in keys]
    if not keys:
        raise BlazeEarError(f"{man.root / 'manifest.json'}: the manifest lists no artifacts")
    if data is not None and not Path(data).exists():
        raise BlazeEarError(f"{data}: no such --data file")
    device = assign_st_reports(st_reports, man)  # read before timing: bad files fail fast
    notes: list[str] = []

    rows = [_static_row(man, k, notes) for k in keys]
    _lint_columns(man, rows, notes)
    x = _timing_input(man)
    for row in rows:
        if row.status.startswith("failed"):
            continue
        try:
            times, row.runtime = time_artifact(man.artifact_path(row.artifact),
                                               man.artifact(row.artifact).format, x, runs,
                                               warmup, progress, f"timing {row.label}")
        except BlazeEarError as exc:
            row.status = f"failed: {exc}"
            continue
        row.host_ms_median = round(float(np.median(times)), 4)
        row.host_ms_p90 = round(float(np.percentile(times, 90)), 4)
    accuracy = _accuracy_info(man)
    if data is not None:
        _map_columns(man, rows, data, images_root, notes, accuracy, progress)
    for row in rows:
        if row.artifact in device:
            _fill_device(row, device[row.artifact])
    res = BenchResult(
        export_dir=man.root, name=man.name, rows=rows, reference=reference_row(),
        machine=machine_info(), runs=runs, warmup=warmup, accuracy=accuracy, notes=notes,
        quant_tensors=_quant_tensors(man, notes),
        created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if out_dir is not None:
        write_outputs(res, out_dir)
    return res


# ------------------------------------------------------------------------------------------------
# rows


def _static_row(man: Manifest, key: str, notes: list[str]) -> BenchRow:
    """File size and the manifest's verification figures (SQNR, parity) for one artifact."""
    a = man.artifact(key)
    label = _LABELS.get(key, f"{a.precision} {a.format}")
    row = BenchRow(artifact=key, label=label, file=a.path)
    path = man.artifact_path(key)
    if not path.is_file():
        row.status = f"failed: {path} is missing"
        return row
    row.size_bytes = path.stat().st_size
    if a.sha256 and sha256_file(path) != a.sha256:
        row.status = "modified since export"
        notes.append(f"{path.name} changed since the export: its SQNR and parity (recorded for "
                     "the exported file) are not shown")
        return row
    v = a.verification
    sq = {k: s for k, s in (v.get("sqnr_db") or {}).items() if s is not None}
    if sq:
        worst = min(sq, key=sq.get)
        row.sqnr_db, row.sqnr_worst_output = float(sq[worst]), worst
    det = v.get("detections")
    if isinstance(det, dict):
        row.det_ref, row.det_matched = det.get("ref"), det.get("matched")
        row.det_extra, row.det_match_rate = det.get("extra"), det.get("match_rate")
        row.det_mean_iou = det.get("mean_iou")
    cap = v.get("candidate_cap") or {}
    if cap:
        row.cap_frames_bound = cap.get("frames_bound")
        row.cap_frames_changed = cap.get("frames_changed")
    if v.get("alerts"):
        row.det_alerts = "; ".join(v["alerts"])
        notes.extend(f"WARNING ({label}, export verification): {a}" for a in v["alerts"])
    if "max_scaled_err" in v:
        row.fp32_max_scaled_err = float(v["max_scaled_err"])
    return row


def _lint_columns(man: Manifest, rows: list[BenchRow], notes: list[str]) -> None:
    """Linter figures per artifact; without the linter, what the export recorded from it."""
    recorded = man.lint or {}
    params = man.model.params or None
    for row in rows:
        if row.status.startswith("failed"):
            continue
        d = None
        try:
            d = lint_model(man.artifact_path(row.artifact)).to_dict()
        except BlazeEarError as exc:  # a file the linter cannot read must not sink the bench
            notes.append(f"lint of {row.file} failed ({str(exc).splitlines()[0]}): its lint "
                         f"columns are empty")
        if d is not None:
            row.params, row.macc = d.get("params"), d.get("macc")
            row.weights_bytes = d.get("weights_bytes")
            row.activations_peak_bytes = d.get("activations_peak_bytes")
            epochs = (d.get("mapping") or {}).get("epochs") or {}
            row.pred_epochs_hw = epochs.get("hw")
            row.pred_epochs_hybrid = epochs.get("hybrid")
            row.pred_epochs_sw = epochs.get("sw")
            if d.get("inference_ms") is not None:
                row.pred_n6_ms = d["inference_ms"]
                row.pred_n6_ms_lo, row.pred_n6_ms_hi = d["inference_ms_band"]
            s = d.get("summary") or {}
            row.lint = ("errors" if s.get("errors") else
                        "warnings" if s.get("warnings") else "clean")
        else:
            rec = recorded.get(row.artifact) or {}
            row.lint = rec.get("verdict")
            row.macc = rec.get("macc")
            epochs = rec.get("epochs") or {}
            row.pred_epochs_hw = epochs.get("hw")
            row.pred_epochs_hybrid = epochs.get("hybrid")
            row.pred_epochs_sw = epochs.get("sw")
        if row.params is None:
            row.params = params  # the model's own count (PyTorch), the same for every artifact


def _accuracy_info(man: Manifest) -> dict:
    v = man.verification
    src = v.get("source") or {}
    rel = next((a.verification.get("relevant_score") for a in man.artifacts.values()
                if a.verification.get("relevant_score") is not None), None)
    return {"parity_reference": "PyTorch fp32",
            "parity_images": v.get("images"), "parity_source": src.get("note") or
            src.get("source"), "sqnr_relevant_score": rel, "data": None, "map_images": None}


def _map_columns(man: Manifest, rows: list[BenchRow], data, images_root, notes, accuracy,
                 progress) -> None:
    """mAP@0.5 per artifact on ``data`` through :mod:`blazeear_edge.evaluate`."""
    accuracy["data"] = str(data)
    for row in rows:
        if not row.measured or row.status.startswith("failed"):
            continue
        d = ev.evaluate_artifact(man.root, row.artifact, data, images_root=images_root,
                                 progress=progress)
        row.map50 = d.get("map50", d.get("ap50"))
        accuracy["map_images"] = d.get("images", accuracy["map_images"])


def _quant_tensors(man: Manifest, notes: list[str]) -> list[dict]:
    """quant_report.json ``onnx.tensors`` in graph order (``index`` = node order)."""
    import json

    path = man.root / "quant_report.json"
    if not path.is_file():
        return []
    try:
        rows = (json.loads(path.read_text()).get("onnx") or {}).get("tensors") or []
    except (OSError, ValueError) as exc:
        notes.append(f"{path}: unreadable ({exc}); no per-layer plot")
        return []
    order = {}
    if "fp32_onnx" in man.artifacts and man.artifact_path("fp32_onnx").is_file():
        try:
            import onnx

            m = onnx.load(str(man.artifact_path("fp32_onnx")), load_external_data=False)
            order.update({i.name: -1 for i in m.graph.input})
            for i, node in enumerate(m.graph.node):
                for o in node.output:
                    order.setdefault(o, i)
        except Exception:  # noqa: BLE001 - fall back to the report's own order
            order = {}
    out = [dict(r) for r in rows if isinstance(r, dict) and "tensor" in r and "sqnr_db" in r]
    out.sort(key=lambda r: order.get(r["tensor"], 10 ** 9))
    return out


# ------------------------------------------------------------------------------------------------
# host latency


def _timing_input(man: Manifest) -> np.ndarray:
    """One pre-processed image (1, 3, 128, 128) in [-1, 1]: the export's first calibration image,
    else a fixed pseudo-random one (latency does not depend on the pixels)."""
    calib = man.root / ((man.calibration or {}).get("file") or "calib.npz")
    if calib.is_file():
        try:
            with np.load(calib, allow_pickle=False) as z:
                if "nchw" in z.files and len(z["nchw"]):
                    return np.ascontiguousarray(z["nchw"][:1], np.float32)
        except (OSError, ValueError):
            pass
    return np.random.default_rng(0).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": 1, "os": platform.platform(),
            "python": platform.python_version(), "onnxruntime": package_version("onnxruntime"),
            "litert": package_version("ai-edge-litert"),
            "tflite_kernels": "built-in kernels, no XNNPACK delegate"}


# ------------------------------------------------------------------------------------------------
# device numbers from ST's files


def parse_report_arg(arg: str | os.PathLike, keys: Iterable[str]) -> tuple[str | None, Path]:
    """``KEY=FILE`` -> (KEY, FILE); ``FILE`` -> (None, FILE). KEY must be an artifact key."""
    text = str(arg)
    keys = list(keys)
    if "=" in text and not Path(text).exists():
        key, path = text.split("=", 1)
        if key not in keys:
            raise BlazeEarError(f"--st-report {text}: '{key}' is not an artifact of this export "
                                f"(has: {', '.join(keys)})")
        return key, Path(path)
    return None, Path(text)


def assign_st_reports(st_reports: Sequence[str | os.PathLike], man: Manifest
                      ) -> dict[str, list[dict]]:
    """Read each ``[KEY=]FILE`` with :func:`~blazeear_edge.streports.read_st_report` and group the
    reports by the artifact they describe (see :func:`run_bench`)."""

    keys = list(man.artifacts)
    out: dict[str, list[dict]] = {}
    for arg in st_reports:
        key, path = parse_report_arg(arg, keys)
        rep = read_st_report(path)
        if key is None:
            key = _guess_artifact(path, man, keys)
        out.setdefault(key, []).append(rep)
    return out


def _guess_artifact(path: Path, man: Manifest, keys: list[str]) -> str:
    """The artifact whose file name the report mentions, else the int8 TFLite."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    named = [k for k in keys if man.artifact(k).path and man.artifact(k).path in text]
    if len(named) == 1:
        return named[0]
    if "int8_tflite" in keys:
        return "int8_tflite"
    raise BlazeEarError(f"--st-report {path}: cannot tell which artifact it describes; write "
                        f"KEY={path} with KEY one of {', '.join(keys)}")


def _fill_device(row: BenchRow, reports: list[dict]) -> None:
    def first(name):
        return next((r[name] for r in reports if r.get(name) is not None), None)

    row.dev_inference_ms = first("inference_ms")
    row.dev_internal_ram_bytes = first("internal_ram_bytes")
    row.dev_external_ram_bytes = first("external_ram_bytes")
    row.dev_external_flash_bytes = first("external_flash_bytes")
    row.dev_weights_bytes = first("weights_bytes")
    row.dev_epochs_total = first("epochs_total")
    row.dev_epochs_hw = first("epochs_hw")
    row.dev_epochs_hybrid = first("epochs_hybrid")
    row.dev_epochs_sw = first("epochs_sw")
    row.dev_tool_version = first("tool_version")
    row.dev_board = first("board")
    row.dev_source = "; ".join(str(r.get("source")) for r in reports)


# ------------------------------------------------------------------------------------------------
# files


def _atomic_text(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_outputs(res: BenchResult, out_dir: str | os.PathLike) -> dict:
    """bench.md, bench.csv, bench.json and the two PNG plots into ``out_dir``."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BlazeEarError(f"{out}: cannot write here ({exc.strerror or exc})") from None
    files = {k: out / v for k, v in FILES.items()}
    try:
        _atomic_text(files["markdown"], res.markdown())
        _atomic_text(files["csv"], res.csv_text())
        plot_accuracy_latency(res, files["accuracy_plot"])
        if res.quant_tensors:
            plot_quant_error(res, files["quant_plot"])
        else:
            files.pop("quant_plot")
        res.files = files
        write_json_atomic(files["json"], res.to_dict())
    except OSError as exc:
        raise BlazeEarError(f"{out}: cannot write the bench files "
                            f"({exc.strerror or exc})") from None
    return files


__all__ = ["BenchResult", "BenchRow", "ST_REFERENCE", "run_bench", "markdown_table",
           "format_markdown", "format_csv", "write_outputs", "reference_row",
           "assign_st_reports"]
