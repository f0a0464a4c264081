"""The fp32 noise floor (noise_floor): pixel noise on the 8-bit grid, the equivalent-level rule
on a hand-made ladder, the per-box-width breakdown against hand-computed IoUs, and both reaching
parity's report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blazeear_edge.metrics import MatchStats, SIZE_BINS, by_box_size, matched_pairs
from blazeear_edge.noise_floor import (Disturbance, disturbance_of, equivalent_level, fmt_level,
                                       pixel_noise)
from blazeear_edge.postprocess import Detections


def _dets(boxes, scores=None) -> Detections:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    s = np.asarray(scores if scores is not None else [0.9] * len(b), np.float32)
    return Detections(b, np.zeros((len(b), 6, 2), np.float32), s)


def test_pixel_noise_stays_on_the_camera_grid():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, 3, 16, 16))
    x = (pixels / 127.5 - 1.0).astype(np.float32)
    y = pixel_noise(x, 3, seed=5)
    back = (y.astype(np.float64) + 1.0) * 127.5
    assert np.allclose(back, np.round(back), atol=1e-3)  # still 8-bit pixel values
    delta = np.round(back) - pixels
    assert np.abs(delta).max() <= 3 and np.abs(delta).max() == 3
    assert back.min() >= -1e-3 and back.max() <= 255 + 1e-3  # clipped to the pixel range
    assert np.array_equal(y, pixel_noise(x, 3, seed=5))  # seeded
    assert not np.array_equal(y, pixel_noise(x, 3, seed=6))


def _ladder():
    # recall, precision, IoU, SQNR of fp32 under +-k levels: each a little worse per level
    return {1: Disturbance(1.0, 1.0, 0.99, 26.0), 2: Disturbance(1.0, 0.98, 0.98, 22.0),
            4: Disturbance(0.97, 0.96, 0.96, 17.0), 8: Disturbance(0.95, 0.93, 0.94, 14.0)}


def test_equivalent_level_is_the_worst_figure():
    # int8: recall 1.0 (as +-1), precision 0.97 (between +-2 and +-4 -> 4), IoU 0.985 (-> 2),
    # SQNR 18 dB (between 22 and 17 -> 4): overall +-4, set by precision and SQNR
    eq = equivalent_level(Disturbance(1.0, 0.97, 0.985, 18.0), _ladder())
    assert eq["by_figure"] == {"recall": 1, "precision": 4, "mean_iou": 2, "worst_sqnr_db": 4}
    assert eq["level"] == 4 and set(eq["limited_by"]) == {"precision", "worst_sqnr_db"}
    assert fmt_level(eq) == "±4 levels"
    # worse than the whole ladder on one figure: beyond it, and says so
    eq = equivalent_level(Disturbance(1.0, 1.0, 0.90, 30.0), _ladder())
    assert eq["level"] is None and eq["by_figure"]["mean_iou"] is None
    assert eq["limited_by"] == ["mean_iou"] and fmt_level(eq) == "> ±8 levels"
    # exactly as stable as +-1 on everything
    assert equivalent_level(Disturbance(1.0, 1.0, 0.99, 26.0), _ladder())["level"] == 1


def test_disturbance_of_match_stats():
    d = disturbance_of(MatchStats(ref=10, test=12, matched=9, iou_sum=9 * 0.9), 15.0)
    assert d.recall == pytest.approx(0.9) and d.precision == pytest.approx(0.75)
    assert d.mean_iou == pytest.approx(0.9) and d.worst_sqnr_db == 15.0


def test_by_box_size_against_hand_computed_iou():
    # reference: a small face (width 0.1), a medium one (0.4) and a large one (0.7)
    ref = _dets([[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.6, 0.6], [0.1, 0.1, 0.8, 0.8]])
    # test: the medium one shifted right by 0.04 (IoU = 0.36*0.4 / (2*0.16 - 0.36*0.4)), the
    # large one exact, the small one lost
    test = _dets([[0.24, 0.2, 0.64, 0.6], [0.1, 0.1, 0.8, 0.8]])
    inter = 0.36 * 0.4
    iou_mid = inter / (2 * 0.16 - inter)
    rows = {r["width"]: r for r in by_box_size([ref], [test])}
    assert len(rows) == len(SIZE_BINS)
    assert rows["0-0.15"]["ref"] == 1 and rows["0-0.15"]["matched"] == 0
    assert rows["0-0.15"]["recall"] == 0.0 and rows["0-0.15"]["mean_iou"] is None
    assert rows["0.3-0.5"]["matched"] == 1
    assert rows["0.3-0.5"]["mean_iou"] == pytest.approx(iou_mid, rel=1e-5)
    assert rows[">= 0.5"]["mean_iou"] == pytest.approx(1.0)
    assert rows["0.15-0.3"]["ref"] == 0 and rows["0.15-0.3"]["recall"] is None
    pairs = matched_pairs(ref, test)
    assert sorted((i, j) for i, j, _ in pairs) == [(1, 0), (2, 1)]


def test_parity_states_int8_as_camera_noise(default_export):
    from blazeear_edge.parity import run_parity

    rep = run_parity(default_export, c_check=False, runtimes=["int8_tflite"])
    r = {x.key: x for x in rep.runtimes}["int8_tflite"]
    eq = r.noise_equivalent
    assert eq and set(eq["by_figure"]) == {"recall", "precision", "mean_iou", "worst_sqnr_db"}
    ladder = {int(k): v for k, v in eq["ladder"].items()}
    assert min(ladder) == 1 and len(ladder) >= 1
    # the level is the first rung at least as disturbed as int8 on every figure
    level = eq["level"]
    if level is not None:
        rung = ladder[level]
        assert rung["worst_sqnr_db"] <= r.worst_sqnr_db + 1e-6
        assert rung["recall"] <= r.match.matched / r.match.ref + 1e-9
    # fp32 itself under noise is measured for real: SQNR falls as the noise grows
    sq = [ladder[k]["worst_sqnr_db"] for k in sorted(ladder)]
    assert all(np.isfinite(sq)) and sq == sorted(sq, reverse=True)
    text = rep.format_text()
    assert "int8 in camera noise" in text and "detections by reference box width" in text
    assert "camera noise" in r.summary()
    d = json.loads(json.dumps(rep.to_dict()))
    rt = [x for x in d["runtimes"] if x["key"] == "int8_tflite"][0]
    assert rt["noise_equivalent"]["by_figure"] == eq["by_figure"]
    assert sum(b["ref"] for b in rt["by_size"]) == r.match.ref
