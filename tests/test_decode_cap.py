"""The decode's candidate cap and the edges of its two comparisons, through the functions the
product calls (``decode`` / ``decode_outputs``; the C code in ``test_harness.py``).

References: hand-built raw outputs whose decoded boxes are exact dyadic numbers (so an IoU of
exactly 0.5 and a logit exactly at the score bound can be written down), the step-by-step
reference functions of ``postprocess`` (``sigmoid_scores``, ``decode_boxes``, ``nms`` with its
own cap), and real photos (ear210 beside the repository when present) for "the default cap never
binds on real frames".
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from blazeear_edge.anchors import ssd_anchors
from blazeear_edge.harness import compare_frame, quantize_outputs, quantize_specs
from blazeear_edge.postprocess import (DEFAULT_MAX_CANDIDATES, SPLIT_OUTPUTS, DecodeConfig,
                                       Detections, decode, decode_boxes, decode_outputs,
                                       join_outputs, logit_bound, nms, sigmoid_scores)
from blazeear_edge.preprocess import preprocess

f32 = np.float32


def raw_boxes(boxes: dict, anchors=None):
    """{anchor: (cx, cy, w, h, logit)} -> (regs, logits, anchors): unit anchors at (0.5, 0.5)
    so every decoded coordinate is ``r / 128 + 0.5`` (exact for dyadic inputs)."""
    table = np.array(ssd_anchors() if anchors is None else anchors, f32)
    regs = np.zeros((896, 16), f32)
    logits = np.full(896, -50.0, f32)
    for a, (cx, cy, w, h, lg) in boxes.items():
        table[a] = (0.5, 0.5, 1.0, 1.0)
        regs[a, :4] = ((cx - 0.5) * 128, (cy - 0.5) * 128, w * 128, h * 128)
        regs[a, 4::2] = (cx - 0.5) * 128  # keypoints at the centre
        regs[a, 5::2] = (cy - 0.5) * 128
        logits[a] = lg
    return regs, logits, table


def same(a: Detections, b: Detections) -> bool:
    return (len(a) == len(b) and a.boxes.tobytes() == b.boxes.tobytes()
            and a.keypoints.tobytes() == b.keypoints.tobytes()
            and a.scores.tobytes() == b.scores.tobytes())


# ---------------------------------------------------------------------------------------------
# the configuration
# ---------------------------------------------------------------------------------------------
def test_default_cap_and_validation():
    assert DecodeConfig().max_candidates == DEFAULT_MAX_CANDIDATES > 0
    assert DecodeConfig.from_dict({"max_candidates": 0}).max_candidates == 0
    assert DecodeConfig().to_dict()["max_candidates"] == DEFAULT_MAX_CANDIDATES
    for bad in (-1, 1.5, True, "8"):
        with pytest.raises(ValueError, match="max_candidates"):
            DecodeConfig(max_candidates=bad)


# ---------------------------------------------------------------------------------------------
# the cap
# ---------------------------------------------------------------------------------------------
def crowd(n, seed=0, ties=True):
    """n disjoint small boxes on a grid (anchors 0..n-1), scores with many exact ties."""
    rng = np.random.default_rng(seed)
    boxes = {}
    for a in range(n):
        cx, cy = 0.03 + 0.03 * (a % 30), 0.03 + 0.03 * (a // 30)
        lg = float(rng.integers(1, 5)) if ties else float(rng.uniform(1, 5))
        boxes[a] = (cx, cy, 0.02, 0.02, lg)
    return boxes


@pytest.mark.parametrize("nms_kind", ["weighted", "hard"])
def test_cap_keeps_the_top_k_with_ties_by_anchor_index(nms_kind):
    """40 disjoint boxes with 4 distinct scores: every candidate is its own detection, so the
    output is exactly the capped set; the cut falls inside a run of equal scores."""
    regs, logits, table = raw_boxes(crowd(40))
    s = sigmoid_scores(logits[:40])
    order = sorted(range(40), key=lambda i: (-s[i], i))  # independent: Python's tuple sort
    for k in (1, 6, 13, 39):
        assert s[order[k - 1]] == s[order[k]]  # the cut splits equal scores
        out = decode(regs, logits, table, DecodeConfig(nms=nms_kind, iou_thresh=0.3,
                                                       max_candidates=k))
        assert len(out) == k
        want = decode_boxes(regs[order[:k]], table[order[:k]])[0]
        if nms_kind == "weighted":  # a group of one: the weighted mean c * s / s of itself
            w = s[order[:k], None]
            want = want * w / w
        np.testing.assert_array_equal(out.boxes, want)
        np.testing.assert_array_equal(out.scores, s[order[:k]])
    full = decode(regs, logits, table, DecodeConfig(nms=nms_kind, max_candidates=0))
    assert len(full) == 40
    assert same(full, decode(regs, logits, table, DecodeConfig(nms=nms_kind, max_candidates=40)))


def test_cap_counts_valid_boxes_only():
    """The best box has a negative width: it is dropped, and the cap of 2 takes the next two."""
    boxes = {0: (0.2, 0.2, 0.05, 0.05, 9.0), 1: (0.4, 0.2, 0.05, 0.05, 7.0),
             2: (0.6, 0.2, 0.05, 0.05, 5.0), 3: (0.8, 0.2, 0.05, 0.05, 3.0)}
    regs, logits, table = raw_boxes(boxes)
    regs[0, 2] = -1.0
    out = decode(regs, logits, table, DecodeConfig(max_candidates=2))
    np.testing.assert_array_equal(out.scores, sigmoid_scores(logits[[1, 2]]))


def test_cap_changes_merging_as_the_reference_nms_does():
    """Overlapping boxes (weighted merging) with the cap binding: ``decode`` equals the
    step-by-step reference (``nms`` with its own cap) bit for bit, and differs from uncapped."""
    rng = np.random.default_rng(3)
    boxes = {a: (0.5 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.02), 0.2, 0.2,
                 float(rng.integers(1, 6))) for a in range(0, 200, 2)}
    regs, logits, table = raw_boxes(boxes)
    keep = sigmoid_scores(logits) >= f32(0.5)
    b, k = decode_boxes(regs[keep], table[keep])
    for cap in (0, 3, 10, 64):
        out = decode(regs, logits, table, DecodeConfig(max_candidates=cap))
        ref = nms(b, k, sigmoid_scores(logits)[keep], 0.3, "weighted", max_candidates=cap)
        assert same(out, ref), cap
    assert not same(decode(regs, logits, table, DecodeConfig(max_candidates=3)),
                    decode(regs, logits, table, DecodeConfig(max_candidates=0)))


def _real_float_outputs(model, images):
    outs, lbs = [], []
    for img in images:
        x, lb = preprocess(img)
        with torch.no_grad():
            outs.append([o.numpy() for o in model(torch.from_numpy(x))])
        lbs.append(lb)
    return outs, lbs


def _candidates(outputs, specs, anchors) -> int:
    regs, logits = join_outputs(outputs, specs)
    keep = sigmoid_scores(logits) >= f32(0.5)
    b, k = decode_boxes(regs[keep], anchors[keep])
    return int(((b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])).sum())


def test_default_cap_never_binds_on_real_frames(model, ear210_all, real_images):
    """Every ear210 photo and the bundled photos, fp32 and int8 (per-tensor quantised outputs):
    fewer candidates than the default cap, and the default decode equals the uncapped one."""
    anchors = ssd_anchors()
    imgs = list(ear210_all.values()) + list(real_images.values())
    outs, lbs = _real_float_outputs(model, imgs)
    specs = quantize_specs(outs, SPLIT_OUTPUTS)
    most = 0
    for fp32, lb in zip(outs, lbs):
        for o, sp in ((fp32, SPLIT_OUTPUTS), (quantize_outputs(fp32, specs), specs)):
            n = _candidates(o, sp, anchors)
            most = max(most, n)
            capped = decode_outputs(o, anchors, DecodeConfig(), sp, letterbox=lb)
            free = decode_outputs(o, anchors, DecodeConfig(max_candidates=0), sp, letterbox=lb)
            assert same(capped, free)
    assert 10 <= most < DEFAULT_MAX_CANDIDATES / 2  # real frames do have candidates; margin


# ---------------------------------------------------------------------------------------------
# the two comparisons, at their exact edges, through decode()
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("thresh", [0.5, 0.75, 0.3])
def test_logit_exactly_at_the_bound_is_kept_by_decode(thresh):
    """``score >= thresh`` is applied as ``logit >= logit_bound(thresh)``: a logit exactly at
    the bound passes, the float32 just below it does not (and its score really is below)."""
    bound = f32(logit_bound(thresh))
    below = np.nextafter(bound, f32(-np.inf))
    assert sigmoid_scores(np.array([bound]))[0] >= f32(thresh)
    assert sigmoid_scores(np.array([below]))[0] < f32(thresh)
    regs, logits, table = raw_boxes({100: (0.25, 0.25, 0.125, 0.125, 0.0),
                                     300: (0.75, 0.75, 0.125, 0.125, 0.0)})
    logits[100], logits[300] = bound, below
    for kind in ("weighted", "hard"):
        out = decode(regs, logits, table, DecodeConfig(score_thresh=thresh, nms=kind))
        assert len(out) == 1
        np.testing.assert_allclose(out.boxes[0], [0.1875, 0.1875, 0.3125, 0.3125], atol=1e-7)


@pytest.mark.parametrize("nms_kind", ["weighted", "hard"])
def test_iou_exactly_at_the_threshold_is_not_suppressed_by_decode(nms_kind):
    """Boxes [.375, .375, .625, .625] and [.375, .375, .625, .5]: intersection 1/32, union 1/16,
    IoU exactly 0.5. At iou_thresh 0.5 they stay apart (IoU > threshold suppresses); just below
    0.5 they merge (weighted) or the second is suppressed (hard)."""
    regs, logits, table = raw_boxes({200: (0.5, 0.5, 0.25, 0.25, 3.0),
                                     202: (0.5, 0.4375, 0.25, 0.125, 1.0)})
    at = decode(regs, logits, table, DecodeConfig(nms=nms_kind, iou_thresh=0.5))
    assert len(at) == 2
    np.testing.assert_allclose(at.boxes, [[0.375, 0.375, 0.625, 0.625],  # (c * s / s)
                                          [0.375, 0.375, 0.625, 0.5]], atol=1e-7)
    below = float(np.nextafter(f32(0.5), f32(0)))
    assert len(decode(regs, logits, table, DecodeConfig(nms=nms_kind, iou_thresh=below))) == 1


def test_iou_at_the_threshold_with_a_single_candidate():
    """One box: its IoU with itself is exactly 1. At iou_thresh 1 it is not its own merge
    candidate (emitted unchanged); below 1 it is (the weighted mean c * s / s of itself)."""
    regs, logits, table = raw_boxes({200: (0.45, 0.5, 0.3, 0.3, 0.7)})
    s = sigmoid_scores(logits[[200]])[0]
    b, k = decode_boxes(regs[[200]], table[[200]])
    c = np.concatenate([b[0], k[0].ravel()])
    assert ((c * s) / s != c).any()  # this box and score tell the two apart
    at = decode(regs, logits, table, DecodeConfig(iou_thresh=1.0))
    np.testing.assert_array_equal(np.concatenate([at.boxes[0], at.keypoints[0].ravel()]), c)
    below = decode(regs, logits, table, DecodeConfig(iou_thresh=0.999))
    np.testing.assert_array_equal(np.concatenate([below.boxes[0], below.keypoints[0].ravel()]),
                                  (c * s) / s)


# ---------------------------------------------------------------------------------------------
# the harness comparator: "bit-exact" must mean bit-exact
# ---------------------------------------------------------------------------------------------
def _dets(box, score=0.75):
    return Detections(np.array([box], f32), np.full((1, 6, 2), 0.25, f32), np.array([score], f32))


def test_comparator_sees_one_ulp_and_the_sign_of_zero():
    ref = _dets([0.25, 0.0, 0.5, 0.75])
    assert compare_frame(ref, _dets([0.25, 0.0, 0.5, 0.75]))[2:4] == (True, True)
    ulp = _dets([0.25, 0.0, float(np.nextafter(f32(0.5), f32(1))), 0.75])
    box_err, _, exact, match, _ = compare_frame(ref, ulp)
    assert not exact and match and 0 < box_err < 1e-7
    negzero = _dets([0.25, -0.0, 0.5, 0.75])
    box_err, _, exact, match, _ = compare_frame(ref, negzero)
    assert not exact and match and box_err == 0
    score_ulp = _dets([0.25, 0.0, 0.5, 0.75], float(np.nextafter(f32(0.75), f32(1))))
    assert compare_frame(ref, score_ulp)[2] is False


def test_comparator_tolerance_is_one_in_a_hundred_thousand():
    """Within 1e-5 (relative above 1) is a match; 1e-4 is not, in input or pixel units."""
    ref = _dets([0.25, 0.0, 0.5, 0.75])
    assert compare_frame(ref, _dets([0.25, 0.0, 0.5 + 8e-6, 0.75]))[3]
    assert not compare_frame(ref, _dets([0.25, 0.0, 0.5 + 1e-4, 0.75]))[3]
    assert not compare_frame(ref, _dets([0.25, 0.0, 0.5 + 2e-3, 0.75]))[3]
    px = _dets([250.0, 10.0, 500.0, 750.0])
    assert compare_frame(px, _dets([250.0, 10.0, 500.0 + 4e-3, 750.0]))[3]
    assert not compare_frame(px, _dets([250.0, 10.0, 500.0 + 0.05, 750.0]))[3]


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------
def test_detect_max_candidates_flag(run_cli, astronaut_png):
    """``--max-candidates`` reaches the decode: 1 keeps one candidate (one detection from the
    astronaut's ~8), 0 and the default give the same faces; a negative value is a one-line
    error with exit status 2."""
    import json

    def dets(*extra):
        r = run_cli("detect", str(astronaut_png), "--json", *extra)
        assert r.code == 0, r.err
        return json.loads(r.out)[0]["detections"]

    default, free, one = dets(), dets("--max-candidates", "0"), dets("--max-candidates", "1")
    assert len(default) == 1 and free == default
    assert len(one) == 1 and one[0]["box"] != default[0]["box"]  # no weighted merge any more
    bad = run_cli("detect", str(astronaut_png), "--max-candidates", "-3")
    assert bad.code == 2 and "--max-candidates" in bad.err and "Traceback" not in bad.err
