"""What an export writes beside its artifacts and prints: tool versions, the camera-pixel
mapping of an integer input, the ``stedgeai generate`` line, the float16 check of the int8
TFLite, and the summary table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import BlazeEarError
from ..preprocess import is_camera_input, pixels_to_input

if TYPE_CHECKING:  # annotations only: the export package imports this module
    from . import ExportResult


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


def camera_mapping(scale: float, zero_point: int, dtype: str) -> dict:
    """How a camera pixel p (uint8 RGB, 0..255) becomes the model's quantised input q."""
    p = np.arange(256, dtype=np.float64)
    q = pixels_to_input(np.arange(256, dtype=np.uint8), np.dtype(dtype), scale,
                        zero_point).astype(np.float64)
    camera = is_camera_input(dtype, scale, zero_point)
    recon = (q - zero_point) * scale
    if camera:  # the folded model's input y = p / 255 stands for x = 2 y - 1
        recon = 2.0 * recon - 1.0
    off = q - p
    identity = bool(np.all(off == off[0]))
    return {
        "formula": ("q = p (camera-exact input: y = p / 255, x = 2 y - 1 folded into the stem)"
                    if camera else "q = clip(round((p / 127.5 - 1) / scale) + zero_point)"),
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


def check_int8_tflite(path: Path) -> None:
    """No float16 tensors (ST Edge AI fails on FLOAT16)."""
    import tflite

    m = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
    g = m.Subgraphs(0)
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        if t.Type() == tflite.TensorType.FLOAT16:
            raise BlazeEarError(f"{path.name}: float16 tensor {t.Name().decode()} "
                                "(ST Edge AI fails on FLOAT16)", exit_code=1)


def figure(v: dict) -> str:
    """The verification column of the summary table."""
    parts = []
    if "max_scaled_err" in v:
        parts.append(f"max err {max(v['max_abs_err'].values()):.1e} abs, "
                     f"{v['max_scaled_err']:.1e} scaled")
    else:
        sq = [x for x in v["sqnr_db"].values() if isinstance(x, (int, float))]  # not "inf"
        if sq:
            parts.append(f"SQNR >= {min(sq):.1f} dB (relevant anchors)")
    d = v.get("detections")
    if d:
        iou = f", IoU {d['mean_iou']:.3f}" if d.get("mean_iou") else ""
        parts.append(f"{d['matched']}/{d['ref']} detections matched{iou}, {d['extra']} extra")
        a = d.get("at_threshold") or {}
        if a.get("alert"):
            parts.append(f"at the deployed threshold {a['score']:.2f}: {a['test']} vs "
                         f"{a['ref']} detections ({a['extra']} extra, {a['missing']} missing)")
    if v.get("noise_equivalent"):
        from ..noise_floor import fmt_level

        parts.append(f"camera noise {fmt_level(v['noise_equivalent'])}")
    cap = v.get("candidate_cap") or {}
    if cap.get("frames_changed"):
        parts.append(f"candidate cap K={cap['max_candidates']} changed "
                     f"{cap['frames_changed']} frame(s)")
    head = v["verdict"] + (", WARNING" if v.get("alerts") else "")
    return f"{head}: " + ", ".join(parts)


def format_summary(res: ExportResult) -> str:
    """The table printed at the end of ``export``."""
    rows = [("artifact", "size KiB", "verification vs PyTorch fp32", "lint",
             "predicted N6 ms (band)")]
    rows += [(r["artifact"], f"{r['size_kib']:.1f}", r["check"], r["lint"], r.get("n6_ms", "-"))
             for r in res.rows]
    w = [max(len(str(r[i])) for r in rows) for i in range(5)]
    lines = ["  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    lines.append("")
    if any(r.get("n6_ms", "-") != "-" for r in res.rows):
        lines.append("predicted N6 ms: lint's latency model for the stedgeai line of the manifest "
                     "(STM32N6570-DK, NPU 1000 MHz / CPU 800 MHz; ST's own BlazeFace: 4.48 ms "
                     "published)")
    src = res.manifest.verification.get("source", {})
    lines.append(f"verification images: {res.manifest.verification.get('images')} "
                 f"({src.get('note', '')})")
    cov = res.manifest.verification.get("coverage")
    if cov:
        from ..coverage import coverage_sentence

        lines.append(f"verification covered: {coverage_sentence(cov)}")
    lines.append(f"written to {res.out_dir}/ (manifest.json, anchors.npy"
                 + (", calib.npz, quant_report.json" if res.manifest.calibration else "")
                 + (", lint_*.json" if res.manifest.lint else "")
                 + f") in {res.seconds:.1f} s")
    for wmsg in res.warnings:
        lines.append(f"warning: {wmsg}")
    return "\n".join(lines)
