"""Numbers that say whether two runtimes agree: SQNR of raw outputs, detection matching."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .postprocess import Detections, iou_one_to_many

#: anchors whose reference score reaches this are the ones a decode can keep; int8 SQNR is also
#: reported over them only (background anchors reach logits of -1000s that int8 saturates, which
#: dominates a whole-tensor SQNR without changing any detection).
RELEVANT_SCORE = 0.05


def relevant_masks(ref: list, specs) -> list:
    """Per image, a (896,) bool mask of the anchors whose reference score >= RELEVANT_SCORE."""
    logit = float(np.log(RELEVANT_SCORE / (1 - RELEVANT_SCORE)))
    masks = []
    for r in ref:
        m = np.zeros(896, bool)
        for s in specs:
            if s.kind == "scores":
                v = np.asarray(r[s.name], np.float32).reshape(-1)
                m[s.anchor_start:s.anchor_start + s.anchor_count] = v >= logit
        masks.append(m)
    return masks


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - test)^2)."""
    ref = np.asarray(ref, np.float64)
    err = np.sum((ref - np.asarray(test, np.float64)) ** 2)
    sig = np.sum(ref ** 2)
    if err == 0:
        return float("inf")
    if sig == 0:
        return float("-inf")
    return float(10.0 * np.log10(sig / err))


@dataclass
class MatchStats:
    """Greedy one-to-one matching of test detections to reference detections at IoU >= thr."""

    ref: int = 0
    test: int = 0
    matched: int = 0
    iou_sum: float = 0.0
    max_score_delta: float = 0.0
    max_keypoint_err_px: float = 0.0  # pixels of the 128x128 input

    @property
    def missing(self) -> int:
        return self.ref - self.matched

    @property
    def extra(self) -> int:
        return self.test - self.matched

    @property
    def match_rate(self) -> float:
        return self.matched / self.ref if self.ref else 1.0

    @property
    def mean_iou(self) -> float:
        return self.iou_sum / self.matched if self.matched else float("nan")

    def add(self, other: "MatchStats") -> "MatchStats":
        return MatchStats(self.ref + other.ref, self.test + other.test,
                          self.matched + other.matched, self.iou_sum + other.iou_sum,
                          max(self.max_score_delta, other.max_score_delta),
                          max(self.max_keypoint_err_px, other.max_keypoint_err_px))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(missing=self.missing, extra=self.extra, match_rate=self.match_rate,
                 mean_iou=None if not self.matched else self.mean_iou)
        d.pop("iou_sum")
        return d


def matched_pairs(ref: Detections, test: Detections, iou_thresh: float = 0.5) -> list:
    """Greedy one-to-one matching by descending IoU: [(ref index, test index, IoU), ...]."""
    if not len(ref) or not len(test):
        return []
    iou = np.stack([iou_one_to_many(b, test.boxes) for b in ref.boxes])
    used_r, used_t, out = set(), set(), []
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        i, j = divmod(int(flat), iou.shape[1])
        if iou[i, j] < iou_thresh:
            break
        if i in used_r or j in used_t:
            continue
        used_r.add(i)
        used_t.add(j)
        out.append((i, j, float(iou[i, j])))
    return out


def match_detections(ref: Detections, test: Detections, iou_thresh: float = 0.5,
                     input_size: int = 128) -> MatchStats:
    """Match by descending IoU (greedy); detections normalised to the 128 input."""
    st = MatchStats(ref=len(ref), test=len(test))
    for i, j, v in matched_pairs(ref, test, iou_thresh):
        st.matched += 1
        st.iou_sum += v
        st.max_score_delta = max(st.max_score_delta, float(abs(ref.scores[i] - test.scores[j])))
        kp = np.abs(ref.keypoints[i] - test.keypoints[j]).max() * input_size
        st.max_keypoint_err_px = max(st.max_keypoint_err_px, float(kp))
    return st


#: box-width bins (fraction of the 128 input) of the per-size breakdown: small faces are the
#: 16x16 head's, large ones the 8x8 head's
SIZE_BINS = ((0.0, 0.15), (0.15, 0.3), (0.3, 0.5), (0.5, float("inf")))


def size_label(lo: float, hi: float) -> str:
    return f">= {lo:g}" if hi == float("inf") else f"{lo:g}-{hi:g}"


def by_box_size(ref: list, test: list, iou_thresh: float = 0.5, bins=SIZE_BINS) -> list[dict]:
    """Per bin of the reference box width (fraction of the input): reference detections,
    matched ones, recall and mean IoU of the matched pairs; images given as parallel lists."""
    acc = [[0, 0, 0.0] for _ in bins]
    for a, b in zip(ref, test):
        width = (a.boxes[:, 2] - a.boxes[:, 0]) if len(a) else np.zeros(0)
        pairs = {i: v for i, _, v in matched_pairs(a, b, iou_thresh)}
        for i, w in enumerate(width):
            k = next(n for n, (lo, hi) in enumerate(bins) if w < hi or n == len(bins) - 1)
            acc[k][0] += 1
            if i in pairs:
                acc[k][1] += 1
                acc[k][2] += pairs[i]
    return [{"width": size_label(lo, hi), "ref": n, "matched": m,
             "recall": (m / n) if n else None, "mean_iou": (s / m) if m else None}
            for (lo, hi), (n, m, s) in zip(bins, acc)]
