"""The fast decode (``decode`` / ``decode_outputs``) against the step-by-step reference
functions of ``postprocess``, bit for bit, in the regime it is tuned for: a handful of
candidates per frame (real frames have 1-28).

Reference: ``sigmoid_scores`` -> ``score >= threshold`` -> ``decode_boxes`` -> drop NaN and
negative-size boxes -> ``nms`` (its own cap, ``iou_one_to_many`` per round) -> ``Letterbox.
to_image``. Each fast-path branch is reached on purpose: one candidate (its weighted mean with
itself, or unchanged when its area is 0), candidates already in score order or not (the NMS
order is applied only when it changes something), one output holding every candidate (summed
without gathering), several outputs, the cap at a tie, invalid boxes, exact-threshold logits,
duplicated boxes and scores, hard NMS, ``max_detections``, integer outputs, letterbox removal.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from blazeear_edge.anchors import ssd_anchors
from blazeear_edge.harness import quantize_outputs, quantize_specs
from blazeear_edge.postprocess import (SPLIT_OUTPUTS, DecodeConfig, Detections, decode,
                                       decode_boxes, decode_outputs, join_outputs, logit_bound,
                                       nms, sigmoid_scores)
from blazeear_edge.preprocess import Letterbox, preprocess

f32 = np.float32
LETTERBOXES = (Letterbox.for_image(640, 480), Letterbox.for_image(300, 533),
               Letterbox.for_image(128, 128))


def reference(regs, logits, anchors, cfg: DecodeConfig, letterbox=None) -> Detections:
    s = sigmoid_scores(logits, cfg.score_clip)
    keep = s >= f32(cfg.score_thresh)
    b, k = decode_boxes(regs[keep], np.asarray(anchors, f32)[keep], cfg)
    c = np.concatenate([b, k.reshape(-1, 12)], axis=1)
    ok = (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1]) & ~np.isnan(c).any(axis=1)
    d = nms(b[ok], k[ok], s[keep][ok], cfg.iou_thresh, cfg.nms, cfg.max_detections,
            cfg.max_candidates)
    return d.to_image(letterbox) if letterbox is not None else d


def assert_same(a: Detections, b: Detections, msg=""):
    assert len(a) == len(b), msg
    for x, y in ((a.boxes, b.boxes), (a.keypoints, b.keypoints), (a.scores, b.scores)):
        assert x.dtype == y.dtype == f32, msg
        assert x.shape == y.shape, msg
        assert x.tobytes() == y.tobytes(), msg  # bits: also the sign of zero and NaN payloads


def random_frame(rng, n: int, bound: float):
    """Raw outputs with ``n`` anchors above the score bound, clustered like a real face (a few
    boxes around one or two centres), with duplicated logits (score ties), logits exactly at the
    bound, duplicated boxes (IoU ties), and now and then a zero-area, negative-size or NaN box."""
    regs = rng.normal(0.0, 20.0, (896, 16)).astype(f32)
    regs[:, 2:4] = np.abs(regs[:, 2:4]) + f32(5.0)
    logits = rng.uniform(-60.0, bound - 1.0, 896).astype(f32)
    idx = np.sort(rng.choice(896, n, replace=False))
    centres = rng.normal(0.0, 10.0, (rng.integers(1, 3), 2))
    for j, a in enumerate(idx):
        cx, cy = centres[j % len(centres)] + rng.normal(0.0, 1.5, 2)
        regs[a, :4] = (cx, cy, rng.uniform(30, 40), rng.uniform(30, 40))
        logits[a] = rng.choice([bound, rng.uniform(bound, 8.0), 3.0, 20.0])
    if n > 1 and rng.random() < 0.5:  # duplicated box and logit: IoU and score ties
        a, b = rng.choice(idx, 2, replace=False)
        regs[b], logits[b] = regs[a], logits[a]
    if rng.random() < 0.2:
        regs[rng.choice(idx), rng.choice([2, 3])] = 0.0  # zero width or height
    if rng.random() < 0.1:
        regs[rng.choice(idx), rng.choice([2, 3])] = -3.0  # negative size: dropped
    if rng.random() < 0.05:
        regs[rng.choice(idx), rng.integers(4, 16)] = np.nan  # NaN keypoint: dropped
    return regs, logits


CONFIGS = [DecodeConfig(), DecodeConfig(nms="hard"), DecodeConfig(max_candidates=3),
           DecodeConfig(max_detections=1), DecodeConfig(iou_thresh=0.0),
           DecodeConfig(score_thresh=0.75, score_clip=5.0)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.nms}-K{c.max_candidates}-"
                         f"D{c.max_detections}-iou{c.iou_thresh}-s{c.score_thresh}")
def test_few_candidates_bit_exact_with_the_reference(cfg):
    rng = np.random.default_rng(13)
    anchors = ssd_anchors()
    bound = logit_bound(cfg.score_thresh, cfg.score_clip)
    seen_n = set()
    for trial in range(160):
        n = int(rng.integers(1, 13))
        regs, logits = random_frame(rng, n, bound)
        lb = LETTERBOXES[trial % len(LETTERBOXES)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and silently
            got = decode(regs, logits, anchors, cfg)
            got_px = decode_outputs([regs[None, :512], logits[None, :512, None],
                                     regs[None, 512:], logits[None, 512:, None]],
                                    anchors, cfg, SPLIT_OUTPUTS, letterbox=lb)
        want = reference(regs, logits, anchors, cfg)
        assert_same(got, want, f"trial {trial}, n {n}")
        assert_same(got_px, want.to_image(lb), f"trial {trial}, n {n}, letterbox {lb}")
        seen_n.add(n)
    assert seen_n == set(range(1, 13))


def test_single_candidate_paths():
    """One candidate: weighted NMS emits c * s / s (its mean with itself), or c unchanged when
    its area is 0 (IoU with itself 0: MediaPipe emits the top and stops); hard NMS emits c."""
    anchors = ssd_anchors()
    rng = np.random.default_rng(5)
    for w in (0.0, 37.25, 1e-3):
        for kind in ("weighted", "hard"):
            regs = rng.normal(0.0, 20.0, (896, 16)).astype(f32)
            logits = np.full(896, -9.0, f32)
            regs[700, 2:4] = (w, 33.0)
            logits[700] = 0.7  # score 0.668..., so c * s / s differs from c somewhere
            cfg = DecodeConfig(nms=kind)
            got = decode(regs, logits, anchors, cfg)
            assert len(got) == 1
            assert_same(got, reference(regs, logits, anchors, cfg), f"w {w}, {kind}")


@pytest.mark.parametrize("descending", [True, False])
def test_candidates_in_and_out_of_score_order(descending):
    """Scores that already descend in anchor order (no reordering) and ones that do not."""
    anchors = ssd_anchors()
    regs = np.zeros((896, 16), f32)
    regs[:, 2:4] = 32.0
    logits = np.full(896, -9.0, f32)
    lg = np.array([4.0, 3.0, 2.0, 2.0, 1.0], f32)
    logits[[600, 601, 602, 603, 604]] = lg if descending else lg[::-1]
    for cfg in (DecodeConfig(), DecodeConfig(nms="hard"), DecodeConfig(max_candidates=2)):
        assert_same(decode(regs, logits, anchors, cfg),
                    reference(regs, logits, anchors, cfg))


def test_every_logit_passing_is_clipped_like_the_reference():
    """A threshold so low that every logit passes (the bound is -inf): logits far below -clip
    get the score of -clip (3.8e-44), not an underflowed 0, and exp does not overflow."""
    anchors = ssd_anchors()
    rng = np.random.default_rng(1)
    regs = rng.normal(0.0, 20.0, (896, 16)).astype(f32)
    regs[:, 2:4] = np.abs(regs[:, 2:4]) + 5.0
    logits = np.full(896, -150.0, f32)
    logits[:3] = (-800.0, -120.0, 2.0)
    cfg = DecodeConfig(score_thresh=0.0, max_candidates=0)
    assert logit_bound(cfg.score_thresh, cfg.score_clip) == -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = decode(regs, logits, anchors, cfg)
    want = reference(regs, logits, anchors, cfg)
    assert_same(got, want)
    assert got.scores.min() > 0


def test_real_frames_bit_exact_with_the_reference(model, ear210_all):
    """Every ear210 photo, fp32 and per-tensor int8 outputs, image pixels, default, hard and
    uncapped low-threshold decodes: the fast path equals the reference functions."""
    anchors = ssd_anchors()
    outs, lbs = [], []
    for img in ear210_all.values():
        x, lb = preprocess(img)
        with torch.no_grad():
            outs.append([o.numpy() for o in model(torch.from_numpy(x))])
        lbs.append(lb)
    specs = quantize_specs(outs, SPLIT_OUTPUTS)
    total = 0
    for fp32, lb in zip(outs, lbs):
        for o, sp in ((fp32, SPLIT_OUTPUTS), (quantize_outputs(fp32, specs), specs)):
            regs, logits = join_outputs(o, sp)
            for cfg in (DecodeConfig(), DecodeConfig(nms="hard"),
                        DecodeConfig(score_thresh=0.05, max_candidates=0)):
                got = decode_outputs(o, anchors, cfg, sp, letterbox=lb)
                assert_same(got, reference(regs, logits, anchors, cfg, lb))
                total += len(got)
    assert total > 100
