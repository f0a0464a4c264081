"""``evaluate``: COCO AP per runtime, checked against hand arithmetic.

* the AP function (pycocotools underneath) on detections built here: 1.0, 0.0 and mixed cases
  whose value is worked out by hand (COCO's 101-point interpolation);
* end to end on tiny COCO sets written here: the ground truth is the fp32 ONNX model's detection
  on a 128x128 input built by hand, mapped to the pixels of a 4x larger, letterboxed image by hand
  arithmetic (not with the toolkit's Letterbox), so AP 1.0 also proves the mapping back to
  original image pixels;
* ear210 (skipped when absent): runs end to end for fp32 and int8.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blazeear_edge.cli import main
from blazeear_edge.errors import BlazeEarError
from blazeear_edge.evaluate import coco_metrics, evaluate, load_ground_truth

#: COCO interpolates precision at 101 recall levels 0, 0.01, ..., 1
R = 101


def _gt(boxes_per_image: list[list[list[float]]]) -> dict:
    images = [{"id": i + 1, "file_name": f"im{i}.png"} for i in range(len(boxes_per_image))]
    anns = [{"id": k + 1, "image_id": i + 1, "category_id": 1, "bbox": b, "area": b[2] * b[3],
             "iscrowd": 0}
            for k, (i, b) in enumerate((i, b) for i, bs in enumerate(boxes_per_image)
                                       for b in bs)]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "ear"}]}


# ---------------------------------------------------------------------------------------------
# the AP function against hand arithmetic
# ---------------------------------------------------------------------------------------------
def test_ap_exact_boxes_is_one():
    gt = _gt([[[10, 10, 50, 40]], [[100, 20, 30, 30], [5, 5, 20, 20]]])
    dets = [{"image_id": a["image_id"], "bbox": a["bbox"], "score": 0.9 - 0.1 * k}
            for k, a in enumerate(gt["annotations"])]
    m = coco_metrics(gt, dets)
    assert m.ap50 == pytest.approx(1.0) and m.ap == pytest.approx(1.0)
    assert m.ar100 == pytest.approx(1.0)
    assert m.gt == 3 and m.detections == 3
    assert np.allclose(m.precision50, 1.0)


def test_ap_disjoint_boxes_is_zero():
    gt = _gt([[[10, 10, 50, 40]]])
    m = coco_metrics(gt, [{"image_id": 1, "bbox": [200, 200, 50, 40], "score": 0.9}])
    assert m.ap50 == 0.0 and m.ap == 0.0 and m.ar100 == 0.0
    assert coco_metrics(gt, []).ap50 == 0.0  # no detection at all


def test_ap_mixed_case_hand_computed():
    # two ground-truth boxes; detections by score: TP (0.9), FP (0.8), TP (0.7)
    # precision/recall after each: (1, 0.5), (0.5, 0.5), (2/3, 1.0)
    # interpolated precision (max precision at recall >= r): 1 for r <= 0.5 (51 levels),
    # 2/3 for 0.51 <= r <= 1 (50 levels)  ->  AP = (51 * 1 + 50 * 2/3) / 101
    gt = _gt([[[10, 10, 50, 40]], [[100, 20, 30, 30]]])
    dets = [{"image_id": 1, "bbox": [10, 10, 50, 40], "score": 0.9},
            {"image_id": 1, "bbox": [300, 300, 10, 10], "score": 0.8},
            {"image_id": 2, "bbox": [100, 20, 30, 30], "score": 0.7}]
    want = (51 * 1.0 + 50 * 2 / 3) / R
    m = coco_metrics(gt, dets)
    assert m.ap50 == pytest.approx(want, abs=1e-9)
    assert m.ap == pytest.approx(want, abs=1e-9)  # exact boxes: the same at every IoU
    assert m.ar100 == pytest.approx(1.0)


def test_ap_over_iou_thresholds_hand_computed():
    # IoU 7200 / 10000 = 0.72: a hit at IoU 0.50, 0.55, 0.60, 0.65, 0.70 (5 of 10 thresholds)
    gt = _gt([[[0, 0, 100, 100]]])
    m = coco_metrics(gt, [{"image_id": 1, "bbox": [0, 0, 100, 72], "score": 0.6}])
    assert m.ap50 == pytest.approx(1.0)
    assert m.ap == pytest.approx(0.5)
    assert m.ar100 == pytest.approx(0.5)


def test_ground_truth_errors(tmp_path):
    p = tmp_path / "two.json"
    p.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [],
                             "categories": [{"id": 1, "name": "ear"},
                                            {"id": 2, "name": "face"}]}))
    with pytest.raises(BlazeEarError, match="--category"):
        load_ground_truth(p)
    assert load_ground_truth(p, category="face").category == "face"
    with pytest.raises(BlazeEarError, match="no category 'nose'"):
        load_ground_truth(p, category="nose")
    with pytest.raises(BlazeEarError, match="not found"):
        load_ground_truth(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------------
# end to end on a tiny COCO set
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def face_strip(default_export):
    """(512x256 RGB image, its face box in image pixels as [x, y, w, h], the 128 input).

    The astronaut at 128x128 (cv2 INTER_AREA); its top 64 rows (the face) centred on a black
    128x128 canvas is the network input; the image is those 64 rows upscaled 4x by pixel
    repetition, so the letterbox (scale 1/4, pad_y 32) gives back exactly that input.
    """
    import cv2
    from skimage import data

    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.postprocess import decode_outputs
    from blazeear_edge.runtimes import run_onnx

    a = cv2.resize(data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)
    strip = a[:64]
    canvas = np.zeros((128, 128, 3), np.uint8)
    canvas[32:96] = strip
    big = np.repeat(np.repeat(strip, 4, axis=0), 4, axis=1)  # (256, 512, 3)
    man = load_manifest(default_export)
    specs = man.output_specs("fp32_onnx")
    x = (canvas.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).transpose(2, 0, 1)
    raw = run_onnx(man.artifact_path("fp32_onnx"), x[None], specs)[0]
    det = decode_outputs(raw, man.anchors(), man.decode_config(score_thresh=0.05), specs)
    assert len(det) >= 1 and det.scores[0] > 0.9  # the face, best first
    x0, y0, x1, y1 = (float(v) for v in det.boxes[0])
    # normalised input -> input pixels (x 128) -> remove the pad (y - 32) -> image (x 4)
    px0, px1 = x0 * 128 * 4, x1 * 128 * 4
    py0, py1 = (y0 * 128 - 32) * 4, (y1 * 128 - 32) * 4
    return big, [px0, py0, px1 - px0, py1 - py0], canvas


def _write_set(tmp_path: Path, images: dict, boxes: dict) -> Path:
    import cv2

    (tmp_path / "images").mkdir(parents=True, exist_ok=True)
    ims, anns = [], []
    for i, (name, img) in enumerate(images.items(), start=1):
        cv2.imwrite(str(tmp_path / "images" / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        ims.append({"id": i, "file_name": name, "width": img.shape[1], "height": img.shape[0]})
        for b in boxes.get(name, []):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 7, "bbox": b,
                         "area": b[2] * b[3], "iscrowd": 0})
    p = tmp_path / "gt.json"
    p.write_text(json.dumps({"images": ims, "annotations": anns,
                             "categories": [{"id": 7, "name": "face"}]}))
    return p


def test_letterbox_input_is_the_hand_built_one(face_strip):
    from blazeear_edge.preprocess import letterbox

    big, _, canvas = face_strip
    got, lb = letterbox(big)
    assert (lb.new_w, lb.new_h, lb.pad_x, lb.pad_y) == (128, 64, 0, 32)
    assert np.array_equal(got, canvas)


def test_evaluate_exact_disjoint_mixed(default_export, face_strip, tmp_path):
    big, box, _ = face_strip
    black = np.zeros_like(big)
    run = dict(runtimes=["fp32_onnx"], plot=None)
    exact = _write_set(tmp_path / "exact", {"face.png": big}, {"face.png": [box]})
    rep = evaluate(default_export, exact, **run)
    m = rep.rows[0].metrics
    assert rep.images == 1 and rep.gt_boxes == 1
    assert m.ap50 == pytest.approx(1.0) and m.ap == pytest.approx(1.0)

    disjoint = _write_set(tmp_path / "disjoint", {"face.png": big},
                          {"face.png": [[10.0, 10.0, 60.0, 60.0]]})
    m = evaluate(default_export, disjoint, **run).rows[0].metrics
    assert m.ap50 == 0.0 and m.ap == 0.0

    # the face found (the best-scored detection), plus a box on a black image nothing can find:
    # precision 1 up to recall 0.5, then nothing -> 51 of 101 recall levels at precision 1
    mixed = _write_set(tmp_path / "mixed", {"face.png": big, "black.png": black},
                       {"face.png": [box], "black.png": [[100.0, 50.0, 80.0, 80.0]]})
    rep = evaluate(default_export, mixed, plot=tmp_path / "pr.png", **{"runtimes": run[
        "runtimes"]})
    m = rep.rows[0].metrics
    assert m.ap50 == pytest.approx(51 / R, abs=1e-9)
    assert m.ap == pytest.approx(51 / R, abs=1e-9)
    assert Path(rep.plot).is_file() and Path(rep.plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the same ground truth as a BlazeEar CSV gives the same numbers
    csv = tmp_path / "mixed" / "gt.csv"
    csv.write_text("image_path,x1,y1,w,h\n" + "".join(
        f"images/{n},{b[0]},{b[1]},{b[2]},{b[3]}\n"
        for n, b in (("face.png", box), ("black.png", [100.0, 50.0, 80.0, 80.0]))))
    m2 = evaluate(default_export, csv, **run).rows[0].metrics
    assert m2.ap50 == pytest.approx(m.ap50) and m2.ap == pytest.approx(m.ap)


def test_cli_json_and_table(default_export, face_strip, tmp_path, capsys):
    big, box, _ = face_strip
    gt = _write_set(tmp_path, {"face.png": big}, {"face.png": [box]})
    rc = main(["evaluate", str(default_export), "--data", str(gt), "--runtimes",
               "fp32_onnx,int8_tflite", "--plot", str(tmp_path / "pr.png"), "--json",
               str(tmp_path / "e.json")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "ONNX fp32" in out and "TFLite int8" in out and "AP50" in out
    d = json.loads((tmp_path / "e.json").read_text())
    assert [r["key"] for r in d["runtimes"]] == ["fp32_onnx", "int8_tflite"]
    assert d["runtimes"][0]["ap50"] == pytest.approx(1.0)
    assert (tmp_path / "pr.png").is_file()
    # a single model file is evaluated the same way
    rc = main(["evaluate", str(default_export / "blazeface_front_mediapipe_fp32.onnx"),
               "--data", str(gt), "--format", "json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["runtimes"][0]["ap50"] == pytest.approx(1.0)
    # the function bench --data calls
    from blazeear_edge.evaluate import evaluate_artifact

    d = evaluate_artifact(default_export, "int8_tflite", gt)
    assert d["images"] == 1 and d["map50"] == d["ap50"] and 0.0 <= d["ap50"] <= 1.0
    rc = main(["evaluate", str(default_export), "--data", str(gt), "--runtimes", "int9_onnx"])
    assert rc == 2 and "unknown runtime" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# real data
# ---------------------------------------------------------------------------------------------
def test_ear210_end_to_end_fp32_and_int8(default_export, ear210, tmp_path):
    keys = ["fp32_onnx", "int8_onnx", "fp32_tflite", "int8_tflite"]
    rep = evaluate(default_export, ear210 / "val_coco.json", runtimes=keys,
                   plot=tmp_path / "pr.png")
    assert rep.images == 18 and rep.gt_boxes == 18 and rep.category == "ear"
    assert sorted(r.key for r in rep.rows) == sorted(keys)
    for r in rep.rows:
        assert not r.error
        m = r.metrics
        for v in (m.ap50, m.ap, m.ar100):
            assert 0.0 <= v <= 1.0
        assert m.ap <= m.ap50
    text = rep.format_text()
    for label in ("ONNX fp32", "ONNX int8", "TFLite fp32", "TFLite int8"):
        assert any(line.startswith(label) for line in text.splitlines())
    assert "int8 ONNX vs int8 TFLite" in text
    # the fp32 artifacts agree with each other (parity says they are the same model)
    on, tf = rep.row("fp32_onnx").metrics, rep.row("fp32_tflite").metrics
    assert on.ap50 == pytest.approx(tf.ap50, abs=0.02)
