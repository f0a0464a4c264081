"""benchmarks/bench_int8.py's yardstick table: int8 rows against the fp32 model under pixel noise."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_int8  # noqa: E402


def _fig(**kw):
    base = {"recall": 0.97, "precision": 0.96, "mean_iou": 0.955, "ap": 0.96,
            "worst_sqnr_db": 22.0, "extra": 2.0}
    return {**base, **kw}


def test_yardstick_marks_what_is_no_worse_than_fp32_under_noise():
    noise = {"face": {2: [_fig(), _fig(recall=0.95, extra=3.0)]}}  # means: recall 0.96, extra 2.5
    results = {("face", "real", "m"): {
        0: {"int8_onnx": _fig(recall=0.96, precision=0.90, extra=2.5),  # ties count as met
            "int8_tflite": _fig(recall=0.99, worst_sqnr_db=18.0, extra=6.0)}}}
    lines = bench_int8.yardstick(results, noise, 2)
    onnx = next(x for x in lines if "int8 onnx" in x)
    tfl = next(x for x in lines if "int8 tflite" in x)
    cells = [c.strip() for c in onnx.strip("|").split("|")]
    assert cells[4] == "0.960 vs 0.960 ✓"  # recall: equal to the yardstick
    assert cells[5] == "0.900 vs 0.960"  # precision: worse, no mark
    assert cells[9] == "2.5 vs 2.5 ✓"  # extra: lower is better, equal counts
    assert cells[-2] == "5 of 6"
    # the equivalent camera noise: precision is worse than fp32's at the only level measured
    assert cells[-1] == "> ±2 (precision)"
    cells = [c.strip() for c in tfl.strip("|").split("|")]
    assert cells[8] == "18.0 vs 22.0" and cells[9] == "6.0 vs 2.5"
    assert cells[-2] == "4 of 6" and cells[-1] == "> ±2 (worst SQNR)"
    # no table for a noise level that was not measured
    assert bench_int8.yardstick(results, noise, 1) == []
