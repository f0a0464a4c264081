"""The two PNGs of ``bench``: accuracy vs host latency per artifact, and the per-tensor
quantisation error of the int8 ONNX (onnxruntime ``qdq_loss_debug``) in graph order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .compare import INT8_DEFAULT

if TYPE_CHECKING:  # annotations only: bench imports this module
    from .bench_table import BenchResult


def _atomic_png(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy_latency(res: BenchResult, path: Path) -> Path:
    """Accuracy (mAP@0.5 with --data, else detection parity vs fp32) against host latency."""
    plt = _plt()
    use_map = res.accuracy.get("data") is not None and any(r.map50 is not None for r in res.rows)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colours = {"fp32": "tab:blue", "int8": "tab:orange"}
    markers = {"onnx": "o", "tflite": "s"}
    for r in res.rows:
        if r.host_ms_median is None:
            continue
        prec, fmt = r.artifact.split("_", 1) if "_" in r.artifact else ("?", "?")
        ref = False
        if use_map:
            y, what = r.map50, "" if r.map50 is None else f"mAP@0.5 {100 * r.map50:.1f}%"
        elif r.det_match_rate is not None:
            y = r.det_match_rate
            what = f"{r.det_matched}/{r.det_ref} matched" + (
                f", IoU {r.det_mean_iou:.3f}" if r.det_mean_iou is not None else "") + (
                f", {r.det_extra} extra" if r.det_extra else "")
        elif r.fp32_max_scaled_err is not None:
            y, ref, what = 1.0, True, "fp32 reference"
        else:
            continue
        if y is None:
            continue
        p90 = r.host_ms_p90 if r.host_ms_p90 is not None else r.host_ms_median
        ax.errorbar([r.host_ms_median], [100.0 * y], xerr=[[0], [max(0.0, p90 - r.host_ms_median)]],
                    fmt=markers.get(fmt, "o"), ms=9, capsize=3, color=colours.get(prec, "grey"),
                    mfc="white" if ref else colours.get(prec, "grey"),
                    label=f"{r.label}: {r.host_ms_median:.2f} ms, {what}")
    if use_map:
        ax.set_ylabel(f"mAP@0.5 (%) on {Path(str(res.accuracy['data'])).name}")
    else:
        ax.set_ylabel("fp32 detections matched (%)")
    ax.set_xlabel(f"host latency, ms (median; bar to p90), 1 thread, {res.runs} runs")
    n = res.accuracy.get("parity_images")
    ax.set_title(f"{res.name}: accuracy vs host latency\n" + (
        "" if use_map else f"parity with PyTorch fp32 on {n} export-verification images "
        "(hollow = fp32, the reference)"), fontsize=9)
    lo, hi = ax.get_ylim()
    ax.set_ylim(max(0.0, lo - 5) if use_map else min(lo, 90.0), max(hi, 102.0))
    ax.set_xlim(0, ax.get_xlim()[1] * 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.9)
    try:
        return _atomic_png(fig, path)
    finally:
        plt.close(fig)


def _short(name: str) -> str:
    s = name[:-len("_output_0")] if name.endswith("_output_0") else name
    return s.strip("/")


def plot_quant_error(res: BenchResult, path: Path, warn_db: float = INT8_DEFAULT.warn_sqnr_db,
                     x_max: float = 60.0) -> Path:
    """Per-tensor SQNR of the int8 ONNX against fp32 (onnxruntime qdq_loss_debug), graph order.

    Values above ``x_max`` (lossless tensors such as MaxPool, Concat or Transpose outputs reach
    hundreds of dB) are drawn at the edge with a ">" marker."""
    plt = _plt()
    t = res.quant_tensors
    n = len(t)
    fig, ax = plt.subplots(figsize=(8, max(4.0, 0.17 * n + 1.4)))
    ypos = np.arange(n)

    def clipped(values):
        v = np.array([np.nan if x is None else x for x in values], float)
        v = np.where(np.isnan(v), np.nan, np.where(np.isfinite(v), v, x_max))
        return np.minimum(v, x_max), v > x_max - 1e-9

    acc, acc_over = clipped([r["sqnr_db"] for r in t])
    colours = ["tab:red" if v < warn_db else "tab:blue" for v in acc]
    ax.barh(ypos, acc, color=colours, alpha=0.8,
            label="int8 model vs float model at this tensor (error accumulated so far)")
    if all("qdq_sqnr_db" in r for r in t):
        q, q_over = clipped([r["qdq_sqnr_db"] for r in t])
        ax.plot(q[~q_over], ypos[~q_over], "k.", ms=4,
                label="int8 model: this tensor vs its own int8 rounding")
        ax.plot(q[q_over], ypos[q_over], "k>", ms=4, label=f"same, above {x_max:.0f} dB")
    ax.axvline(warn_db, color="grey", ls="--", lw=1)
    ax.text(warn_db, -0.9, f" {warn_db:.0f} dB (export warning level)", fontsize=7,
            color="grey", va="bottom")
    ax.set_yticks(ypos)
    ax.set_yticklabels([_short(r["tensor"]) for r in t], fontsize=6)
    ax.set_ylim(n, -2)
    ax.set_xlim(0, x_max + 2)
    ax.set_xlabel("SQNR (dB), higher is better")
    worst = min(t, key=lambda r: r["sqnr_db"])
    ax.set_title(f"{res.name}: per-tensor quantisation error, int8 ONNX (graph order)\n"
                 f"worst {_short(worst['tensor'])} {worst['sqnr_db']:.1f} dB", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", frameon=False, ncol=1,
              bbox_to_anchor=(0.5, -0.65 / fig.get_figheight()))
    try:
        return _atomic_png(fig, path)
    finally:
        plt.close(fig)


__all__ = ["plot_accuracy_latency", "plot_quant_error"]
