"""Calibration sets: sources, pre-processing, determinism, bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from blazeear_edge.calib_data import (build_calibration, builtin_holdout, builtin_samples,
                                      load_npz, save_npz)
from blazeear_edge.cli import main
from blazeear_edge.errors import BlazeEarError


def _img(path, w, h, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.zeros((h, w, 3), np.uint8)
    a[:] = colour
    assert cv2.imwrite(str(path), a)


@pytest.fixture
def folder(tmp_path):
    _img(tmp_path / "imgs" / "a.png", 64, 32, (255, 255, 255))
    _img(tmp_path / "imgs" / "sub" / "b.jpg", 40, 40, (0, 0, 255))
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG garbage")
    (tmp_path / "imgs" / "notes.txt").write_text("ignored")
    return tmp_path / "imgs"


def test_folder_recursive_letterboxed_and_skips_unreadable(folder):
    s = build_calibration(folder, 10, progress=False)
    assert len(s) == 2 and s.provenance["skipped"] == 1
    assert s.provenance["skipped_files"][0]["file"].endswith("broken.png")
    white = s.names.index(str(folder / "a.png"))
    x = s.nchw[white]
    # 64x32 white image -> 128x64 centred: rows 32..95 are 1.0, the border rows are -1 (black)
    assert np.allclose(x[:, 32:96, :], 1.0) and np.allclose(x[:, :32, :], -1.0)
    assert np.allclose(x[:, 96:, :], -1.0)
    np.testing.assert_array_equal(s.nhwc[white], x.transpose(1, 2, 0))


def test_seed_makes_sampling_deterministic():
    a = build_calibration(None, 20, seed=3, progress=False)
    b = build_calibration(None, 20, seed=3, progress=False)
    c = build_calibration(None, 20, seed=4, progress=False)
    assert a.names == b.names and a.names != c.names
    np.testing.assert_array_equal(a.nchw, b.nchw)


def test_builtin_keeps_its_holdout_out_and_says_it_is_the_default():
    s = build_calibration(None, 500, progress=False)
    held = {x.name for x in builtin_holdout(builtin_samples())}
    assert len(held) == 57 and not held & set(s.names)  # astronaut, 16 frames of her, 40 LFW
    assert s.provenance["default_used"] and "your own images" in s.provenance["note"]


def test_csv_and_coco_sources_with_box_crops(tmp_path):
    _img(tmp_path / "images" / "x.png", 200, 100, (10, 200, 10))
    (tmp_path / "labels.csv").write_text("image_path,x1,y1,w,h\nx.png,20,20,30,30\n")
    s = build_calibration(tmp_path / "labels.csv", 10, crop_boxes=True,
                          images_root=tmp_path / "images", progress=False)
    assert len(s) == 2 and s.names[1].endswith("#crop0")
    coco = {"images": [{"id": 1, "file_name": "x.png", "width": 200, "height": 100}],
            "annotations": [{"id": 1, "image_id": 1, "bbox": [20, 20, 30, 30],
                             "category_id": 1}], "categories": [{"id": 1, "name": "ear"}]}
    (tmp_path / "c.json").write_text(json.dumps(coco))
    s2 = build_calibration(tmp_path / "c.json", 10, crop_boxes=True, progress=False)
    assert len(s2) == 2  # found through <json dir>/images


def test_npz_round_trip_and_cli(tmp_path, folder, capsys):
    out = tmp_path / "cal.npz"
    assert main(["calib", str(folder), "--out", str(out), "--quiet"]) == 0
    assert "2 images" in capsys.readouterr().out
    s = load_npz(out)
    z = np.load(out)
    np.testing.assert_array_equal(z["nhwc"], z["nchw"].transpose(0, 2, 3, 1))
    assert s.provenance["count_used"] == 2 and len(s.provenance["files"]) == 2
    assert all(len(f["sha256"]) == 64 for f in s.provenance["files"])
    # the npz is accepted as a calibration source too
    assert len(build_calibration(out, 5, progress=False)) == 2


@pytest.mark.parametrize("setup,needle", [
    (lambda p: p.mkdir(), "no images found"),
    (lambda p: (p.mkdir(), (p / "a.jpg").write_bytes(b"zz")), "no readable images"),
    (lambda p: None, "not found"),
])
def test_bad_sources_one_line_exit_2(tmp_path, capsys, setup, needle):
    src = tmp_path / "src"
    setup(src)
    with pytest.raises(BlazeEarError, match=needle):
        build_calibration(src, 5, progress=False)
    assert main(["calib", str(src), "--out", str(tmp_path / "o.npz"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "o.npz").exists()


def test_count_must_be_positive():
    with pytest.raises(BlazeEarError, match="positive"):
        build_calibration(None, 0, progress=False)


def test_save_npz_refuses_missing_folder(tmp_path):
    s = build_calibration(None, 2, progress=False)
    with pytest.raises(BlazeEarError, match="does not exist"):
        save_npz(s, tmp_path / "missing" / "x.npz")
