"""Host post-processing in pure NumPy: dequantise, decode, threshold, MediaPipe NMS, un-letterbox.

No torch import. This is the reference the C harness (``firmware_harness/blazeear_pp.c``) must
reproduce bit for bit, so every float32 operation below is written in the order the C code uses
(and the C code is compiled with ``-ffp-contract=off`` so no fused multiply-add changes a
rounding):

* dequantise: ``(float)(q - zp) * scale``
* decode (per anchor ``a``, raw values ``r``; ``S = 128``)::

      xc = r0 / S * a.w + a.x        yc = r1 / S * a.h + a.y
      w  = r2 / S * a.w              h  = r3 / S * a.h
      box = (xc - w * 0.5, yc - h * 0.5, xc + w * 0.5, yc + h * 0.5)
      kp_k = (r[4+2k] / S * a.w + a.x, r[5+2k] / S * a.h + a.y)

* score: ``(float)(1.0 / (1.0 + exp(-(double)clip(logit, -100, 100))))`` computed in double and
  rounded once, so NumPy's and newlib's ``exp`` agree after rounding; keep when
  ``score >= score_thresh``; drop NaN boxes and boxes with negative width or height.
* sort by score descending, ties by anchor index (stable).
* candidate cap: only the first ``max_candidates`` candidates of that order (top-K by score,
  ties by anchor index; boxes dropped above are not counted) enter NMS; 0 = no cap. It bounds
  the quadratic NMS on a pathological frame (every anchor above the threshold: 896 candidates
  cost the Cortex-M55 about 18 M instructions uncapped, 0.74 M with the default cap). The
  default, :data:`DEFAULT_MAX_CANDIDATES`, is chosen never to bind on real frames at the
  deployment threshold (measured: at most 28 candidates per ear210 photo with the int8 TFLite, 43
  on the built-in hold-out;
  ``benchmarks/bench_candidates.py``); decoding at a much lower threshold (evaluation at 0.05:
  up to ~290 candidates) needs ``max_candidates=0``.
* IoU (float32): intersection of the clipped corners, 0 when ``iw <= 0`` or ``ih <= 0``;
  ``union = area_a + area_b - inter``; 0 when ``union <= 0``.
* WEIGHTED NMS (MediaPipe): candidates = remaining detections (top included) with IoU with the top
  strictly greater than ``iou_thresh``; the merged box corners and keypoints are
  ``sum(v * s) / sum(s)`` accumulated in candidate order; the score is the top's; when nothing is
  removed in a round (a zero-area top), the top is emitted and the loop stops.
* HARD NMS: the top is kept, candidates (IoU > threshold) are dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

NUM_ANCHORS = 896
NUM_COORDS = 16
NUM_KEYPOINTS = 6
NMS_KINDS = ("weighted", "hard")
#: Default candidate cap (top-K by score entering NMS); see the module docstring.
DEFAULT_MAX_CANDIDATES = 128


@dataclass(frozen=True)
class DecodeConfig:
    """Decode parameters; the export manifest's ``decode`` section has the same keys."""

    score_thresh: float = 0.5
    iou_thresh: float = 0.3
    nms: str = "weighted"
    score_clip: float = 100.0
    max_detections: int = 0  # 0 = no cap (MediaPipe)
    max_candidates: int = DEFAULT_MAX_CANDIDATES  # top-K by score entering NMS; 0 = no cap
    #: ST's int8 pre-filter (lib_vision_models_pp, ``st-app`` profile): an integer score q must
    #: also satisfy q > (int8)trunc(logit(score_thresh) / scale + zero_point); see
    #: :func:`st_prefilter_level`. Off by default.
    st_prefilter: bool = False
    x_scale: float = 128.0
    y_scale: float = 128.0
    w_scale: float = 128.0
    h_scale: float = 128.0

    def __post_init__(self):
        if self.nms not in NMS_KINDS:
            raise ValueError(f"nms must be one of {NMS_KINDS}, not {self.nms!r}")
        for k in ("score_thresh", "iou_thresh", "score_clip", "x_scale", "y_scale", "w_scale",
                  "h_scale"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
                raise ValueError(f"{k} must be a number, got {v!r:.40}")
        if isinstance(self.max_detections, bool) or not isinstance(self.max_detections,
                                                                     (int, np.integer)):
            raise ValueError(f"max_detections must be an integer, got {self.max_detections!r:.40}")
        k = self.max_candidates
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= 65535:
            raise ValueError(f"max_candidates must be an integer >= 0 (0 = no cap), not {k!r}")
        if not isinstance(self.st_prefilter, (bool, np.bool_)):
            raise ValueError(f"st_prefilter must be true or false, got {self.st_prefilter!r:.40}")

    @classmethod
    def from_dict(cls, d: dict) -> "DecodeConfig":
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in keys})

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class OutputSpec:
    """One network output tensor: which anchors it covers, what it holds, how it is quantised.

    ``layout`` is ``"anchors"`` for (1, count, C) tensors (C = 16 or 1), or ``"nchw"`` for a head's
    raw convolution map (1, A * C, H, W) with ``anchors_per_cell`` = A (the ONNX export: no
    Transpose in the graph; :func:`to_anchor_major` reorders it). ``dtype`` is
    ``float32`` or ``int8``/``uint8`` with ``scale`` and ``zero_point``.
    """

    name: str
    kind: str  # "regressors" or "scores"
    anchor_start: int
    anchor_count: int
    dtype: str = "float32"
    scale: float = 1.0
    zero_point: int = 0
    shape: Sequence[int] = ()
    layout: str = "anchors"
    anchors_per_cell: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> "OutputSpec":
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in keys})

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["shape"] = list(d["shape"])
        return d


#: The four split outputs of :class:`blazeear_edge.model.BlazeEar`, in order.
SPLIT_OUTPUTS = (
    OutputSpec("regressors_16x16", "regressors", 0, 512, shape=(1, 512, 16)),
    OutputSpec("scores_16x16", "scores", 0, 512, shape=(1, 512, 1)),
    OutputSpec("regressors_8x8", "regressors", 512, 384, shape=(1, 384, 16)),
    OutputSpec("scores_8x8", "scores", 512, 384, shape=(1, 384, 1)),
)
#: The four split outputs as raw NCHW head maps (the ONNX export's layout).
SPLIT_MAP_OUTPUTS = (
    OutputSpec("regressors_16x16", "regressors", 0, 512, shape=(1, 32, 16, 16), layout="nchw",
               anchors_per_cell=2),
    OutputSpec("scores_16x16", "scores", 0, 512, shape=(1, 2, 16, 16), layout="nchw",
               anchors_per_cell=2),
    OutputSpec("regressors_8x8", "regressors", 512, 384, shape=(1, 96, 8, 8), layout="nchw",
               anchors_per_cell=6),
    OutputSpec("scores_8x8", "scores", 512, 384, shape=(1, 6, 8, 8), layout="nchw",
               anchors_per_cell=6),
)
#: MediaPipe's two concatenated outputs.
CONCAT_OUTPUTS = (
    OutputSpec("regressors", "regressors", 0, 896, shape=(1, 896, 16)),
    OutputSpec("classificators", "scores", 0, 896, shape=(1, 896, 1)),
)


@dataclass
class Detections:
    """Detections after NMS, best first, normalised to the 128x128 input (or in image pixels)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 6, 2), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    #: valid candidates (score >= threshold, finite, non-negative size) the decode found, before
    #: the candidate cap; -1 when not known (detections not made by the decode)
    candidates: int = -1
    #: valid candidates the candidate cap (``max_candidates``) kept out of NMS: > 0 means the
    #: cap bound on this frame (see :mod:`blazeear_edge.capreport`)
    cap_dropped: int = 0

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_image(self, letterbox) -> "Detections":
        """Undo the letterbox: coordinates in pixels of the original image."""
        pts = np.concatenate([self.boxes.reshape(-1, 2, 2), self.keypoints], axis=1)
        pts = letterbox.to_image(pts)
        return Detections(pts[:, :2].reshape(-1, 4), pts[:, 2:].copy(), self.scores.copy(),
                          self.candidates, self.cap_dropped)

    def to_list(self) -> list[dict]:
        return [{"score": float(s), "box": [float(v) for v in b],
                 "keypoints": [[float(x), float(y)] for x, y in k]}
                for s, b, k in zip(self.scores, self.boxes, self.keypoints)]


def to_anchor_major(arr: np.ndarray, spec: OutputSpec) -> np.ndarray:
    """A head output in the spec's layout -> (1, anchor_count, C) in anchor order.

    An NCHW map (1, A * C, H, W) holds value ``k`` of anchor ``a`` at cell ``(row, col)`` in
    channel ``a * C + k``; anchor index = (row * W + col) * A + a. A 4-D array is taken as such a
    map even when the spec says ``anchors`` (any ONNX model whose heads end in a convolution).
    """
    arr = np.asarray(arr)
    if arr.ndim != 4:
        return arr
    c = NUM_COORDS if spec.kind == "regressors" else 1
    n, ch, h, w = arr.shape
    a = ch // c
    if n != 1 or a * c != ch or h * w * a != spec.anchor_count:
        raise ValueError(f"output {spec.name}: map of shape {arr.shape} does not hold "
                         f"{spec.anchor_count} anchors x {c} values")
    return np.ascontiguousarray(arr.reshape(a, c, h, w).transpose(2, 3, 0, 1)).reshape(
        1, h * w * a, c)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``(float)(q - zp) * scale`` in float32 (the order the C harness uses)."""
    q = np.asarray(q)
    if q.dtype.kind == "f":
        return q.astype(np.float32, copy=False)
    return (q.astype(np.int32) - np.int32(zero_point)).astype(np.float32) * np.float32(scale)


def _in_spec_order(outputs, specs: Sequence[OutputSpec]) -> list:
    """Outputs (a list in ``specs`` order or a dict by name) as a list in ``specs`` order, head
    maps reordered to (1, anchors, C)."""
    if isinstance(outputs, dict):
        missing = [x.name for x in specs if x.name not in outputs]
        if missing:
            raise ValueError(f"outputs missing: {missing}")
        outputs = [outputs[x.name] for x in specs]
    if len(outputs) != len(specs):
        raise ValueError(f"expected {len(specs)} outputs, got {len(outputs)}")
    for a in outputs:
        if getattr(a, "ndim", 0) == 4:
            return [to_anchor_major(a, x) for a, x in zip(outputs, specs)]
    return outputs


def join_outputs(outputs, specs: Sequence[OutputSpec] = SPLIT_OUTPUTS):
    """Raw outputs (list in ``specs`` order, or dict by name) -> (896, 16) and (896,) float32.

    Integer outputs are dequantised with each spec's scale and zero point.
    """
    outputs = _in_spec_order(outputs, specs)
    regs = np.zeros((NUM_ANCHORS, NUM_COORDS), np.float32)
    logits = np.zeros((NUM_ANCHORS,), np.float32)
    seen_r = np.zeros(NUM_ANCHORS, bool)
    seen_s = np.zeros(NUM_ANCHORS, bool)
    for arr, spec in zip(outputs, specs):
        x = dequantize(arr, spec.scale, spec.zero_point)
        sl = slice(spec.anchor_start, spec.anchor_start + spec.anchor_count)
        if spec.kind == "regressors":
            regs[sl] = x.reshape(spec.anchor_count, NUM_COORDS)
            seen_r[sl] = True
        elif spec.kind == "scores":
            logits[sl] = x.reshape(spec.anchor_count)
            seen_s[sl] = True
        else:
            raise ValueError(f"output {spec.name}: unknown kind {spec.kind!r}")
    if not (seen_r.all() and seen_s.all()):
        raise ValueError("the output specs do not cover all 896 anchors")
    return regs, logits


def sigmoid_scores(logits: np.ndarray, clip: float = 100.0) -> np.ndarray:
    x = np.clip(np.asarray(logits, np.float32), np.float32(-clip), np.float32(clip))
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def decode_boxes(regs: np.ndarray, anchors: np.ndarray, cfg: DecodeConfig = DecodeConfig()):
    """(N, 16) raw regressors + (N, 4) anchors -> boxes (N, 4) and keypoints (N, 6, 2), float32."""
    f = np.float32
    r = np.asarray(regs, np.float32)
    a = np.asarray(anchors, np.float32)
    ax, ay, aw, ah = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    xc = r[:, 0] / f(cfg.x_scale) * aw + ax
    yc = r[:, 1] / f(cfg.y_scale) * ah + ay
    w = r[:, 2] / f(cfg.w_scale) * aw
    h = r[:, 3] / f(cfg.h_scale) * ah
    half = f(0.5)
    boxes = np.stack([xc - w * half, yc - h * half, xc + w * half, yc + h * half], axis=1)
    kx = r[:, 4::2] / f(cfg.x_scale) * aw[:, None] + ax[:, None]
    ky = r[:, 5::2] / f(cfg.y_scale) * ah[:, None] + ay[:, None]
    kps = np.stack([kx, ky], axis=2)
    return boxes.astype(np.float32), kps.astype(np.float32)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box with many, float32, 0 for disjoint boxes or a non-positive union."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    iw = ix1 - ix0
    ih = iy1 - iy0
    inter = iw * ih
    area_a = (box[2] - box[0]) * (box[3] - box[1])
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area_a + area_b - inter
    ok = (iw > 0) & (ih > 0) & (union > 0)
    out = np.zeros(boxes.shape[0], np.float32)
    np.divide(inter, union, out=out, where=ok)
    return out


def nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
        iou_thresh: float = 0.3, kind: str = "weighted", max_detections: int = 0,
        max_candidates: int = 0) -> Detections:
    """MediaPipe WEIGHTED NMS (or hard NMS) over candidates already thresholded (in anchor
    order), after the candidate cap (the first ``max_candidates`` by score, ties by position;
    0 = all)."""
    if kind not in NMS_KINDS:
        raise ValueError(f"nms must be one of {NMS_KINDS}, not {kind!r}")
    n = scores.shape[0]
    if n == 0:
        return Detections()
    order = np.argsort(-scores, kind="stable")
    if max_candidates and n > max_candidates:
        order = order[:max_candidates]
        n = max_candidates
    # coords per candidate: 4 box corners + 12 keypoint values, in sorted order
    coords = np.concatenate([boxes, keypoints.reshape(-1, 12)], axis=1)[order]
    sc = scores[order].astype(np.float32)
    thr = np.float32(iou_thresh)
    out_c, out_s = [], []
    remaining = np.arange(n)
    while remaining.size:
        top = remaining[0]
        ious = iou_one_to_many(coords[top, :4], coords[remaining, :4])
        cand = ious > thr
        if kind == "weighted":
            if cand.any():
                idx = remaining[cand]
                w = sc[idx]
                acc = np.cumsum(coords[idx] * w[:, None], axis=0)[-1]
                total = np.cumsum(w)[-1]
                out_c.append(acc / total)
            else:
                out_c.append(coords[top])
            out_s.append(sc[top])
            if not cand.any():  # nothing removed: MediaPipe stops here
                break
        else:
            out_c.append(coords[top])
            out_s.append(sc[top])
            cand[0] = True  # the top is always consumed
        remaining = remaining[~cand]
        if max_detections and len(out_s) >= max_detections:
            break
    c = np.asarray(out_c, np.float32).reshape(-1, 16)
    return Detections(c[:, :4].copy(), c[:, 4:].reshape(-1, 6, 2).copy(),
                      np.asarray(out_s, np.float32))


def decode(regs: np.ndarray, logits: np.ndarray, anchors: np.ndarray,
           cfg: DecodeConfig = DecodeConfig()) -> Detections:
    """(896, 16) regressors + (896,) logits -> detections normalised to the 128x128 input."""
    regs = np.asarray(regs, np.float32).reshape(-1, NUM_COORDS)
    if regs.shape[0] != NUM_ANCHORS:
        raise ValueError(f"expected (896, 16) regressors, got {regs.shape}")
    return _decode_fast(np.asarray(logits, np.float32).reshape(-1), lambda idx: regs[idx],
                        anchors, cfg, None)


def _plan(specs: Sequence[OutputSpec]):
    hit = _PLANS_BY_ID.get(id(specs))
    if hit is not None and hit[0] is specs:
        return hit[1]
    key = tuple((x.name, x.kind, x.anchor_start, x.anchor_count, x.dtype, float(x.scale),
                 int(x.zero_point)) for x in specs)
    plan = _PLANS.get(key)
    if plan is not None:
        return plan
    kinds = {x.kind for x in specs}
    if not kinds <= {"scores", "regressors"}:
        raise ValueError(f"unknown output kind(s): {sorted(kinds - {'scores', 'regressors'})}")
    order = sorted(range(len(specs)), key=lambda i: (specs[i].kind, specs[i].anchor_start))
    sc = [i for i in order if specs[i].kind == "scores"]
    rg = [i for i in order if specs[i].kind == "regressors"]
    for group in (sc, rg):
        pos = 0
        for i in group:
            if specs[i].anchor_start != pos:
                raise ValueError("the output specs do not cover all 896 anchors")
            pos += specs[i].anchor_count
        if pos != NUM_ANCHORS:
            raise ValueError("the output specs do not cover all 896 anchors")
    # per-anchor dequantisation parameters of the regressor rows (used only for integer data)
    r_zp = np.concatenate([np.full(specs[i].anchor_count, specs[i].zero_point, np.int32)
                           for i in rg])[:, None]
    r_scale = np.concatenate([np.full(specs[i].anchor_count, specs[i].scale, np.float32)
                              for i in rg])[:, None]
    plan = (sc, rg, r_zp, r_scale, [specs[i].anchor_start for i in rg])
    if len(_PLANS) < 64:
        _PLANS[key] = plan
    if specs is SPLIT_OUTPUTS or specs is CONCAT_OUTPUTS:  # module constants never change
        _PLANS_BY_ID[id(specs)] = (specs, plan)
    return plan


_PLANS: dict = {}
_PLANS_BY_ID: dict = {}


def decode_outputs(outputs, anchors: np.ndarray, cfg: DecodeConfig = DecodeConfig(),
                   specs: Sequence[OutputSpec] = SPLIT_OUTPUTS, letterbox=None) -> Detections:
    """Raw network outputs (float or int8, per ``specs``) -> detections.

    Only the score tensors are dequantised whole; regressor rows are gathered (and dequantised)
    for the anchors that pass the threshold. With ``letterbox`` the result is in pixels of the
    original image.
    """
    outputs = _in_spec_order(outputs, specs)
    sc, rg, r_zp, r_scale, starts = _plan(specs)
    parts = [outputs[i] if getattr(outputs[i], "dtype", _F64).char == "f"
             else dequantize(outputs[i], specs[i].scale, specs[i].zero_point) for i in sc]
    logits = np.concatenate(parts, axis=None) if len(parts) > 1 else parts[0].reshape(-1)
    if logits.shape[0] != NUM_ANCHORS:
        raise ValueError(f"score outputs hold {logits.shape[0]} values, expected {NUM_ANCHORS}")
    if cfg.st_prefilter:  # --- ST pre-filter (st-app profile) -------------------------------
        keep = np.concatenate([
            np.asarray(outputs[i]).reshape(-1).astype(np.int32)
            > st_prefilter_level(cfg.score_thresh, specs[i].scale, specs[i].zero_point,
                                 specs[i].dtype)
            if np.asarray(outputs[i]).dtype.kind in "iu" else
            np.ones(specs[i].anchor_count, bool) for i in sc])
        logits = np.where(keep, logits, np.float32(-np.inf))  # --- end ST pre-filter --------
    raw = [np.asarray(outputs[i]) for i in rg]  # in anchor order

    def gather(idx: np.ndarray) -> np.ndarray:
        """Regressor rows of the anchors ``idx`` (ascending): from the one tensor holding them
        all when there is one (no copy of the whole table), else from the joined table."""
        first, last = int(idx[0]), int(idx[-1])
        p = len(starts) - 1
        while starts[p] > first:
            p -= 1
        if p + 1 == len(starts) or last < starts[p + 1]:
            rows = raw[p].reshape(-1, NUM_COORDS).take(idx - starts[p] if starts[p] else idx,
                                                       axis=0)
        else:
            rows = np.concatenate(raw, axis=None).reshape(-1, NUM_COORDS).take(idx, axis=0)
        if rows.dtype.kind == "f":
            return rows.astype(np.float32, copy=False)
        return ((rows.astype(np.int32) - r_zp.take(idx, axis=0)).astype(np.float32)
                * r_scale.take(idx, axis=0))

    return _decode_fast(logits, gather, anchors, cfg, letterbox)


_F = np.float32
_HALF = _F(0.5)


def st_prefilter_level(score_thresh: float, scale: float, zero_point: int,
                       dtype="int8") -> int:
    """ST's int8 score pre-filter level T: a score passes when ``q > T`` with
    ``T = (int8)trunc(logf(t / (1 - t)) / scale + zero_point)``, in float32 as C computes it
    (truncation toward zero, then saturated to the integer type's range)."""
    t = _F(score_thresh)
    info = np.iinfo(np.dtype(dtype))
    with np.errstate(divide="ignore"):
        v = _F(np.log(t / (_F(1.0) - t))) / _F(scale) + _F(zero_point)
    if not np.isfinite(v):
        return info.min - 1 if v < 0 else info.max
    return int(min(max(np.trunc(v), info.min), info.max))


def _sigmoid32(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))).astype(np.float32)


_BOUNDS: dict = {}


def logit_bound(score_thresh: float, clip: float = 100.0) -> float:
    """The smallest float32 logit whose score (this module's sigmoid, after the clip) is
    >= ``score_thresh``: ``logits >= bound`` selects exactly the anchors the score test keeps.

    Found by bisection over the float32 values (the rounded sigmoid is monotonic); cached.
    """
    key = (float(score_thresh), float(clip))
    if key in _BOUNDS:
        return _BOUNDS[key]
    t = _F(score_thresh)
    lo_v, hi_v = _F(-clip), _F(clip)

    def ok(v):
        return bool(_sigmoid32(np.clip(np.float32(v), -clip, clip)) >= t)

    if ok(lo_v):
        bound = -np.inf  # every logit passes (the clip maps anything lower to -clip)
    elif not ok(hi_v):
        bound = np.inf  # nothing can pass
    else:
        # bisection on the ordered int32 view of float32 values
        def key_of(v):
            i = int(np.float32(v).view(np.int32))
            return i if i >= 0 else -(i & 0x7FFFFFFF)

        def val_of(k):
            i = k if k >= 0 else (-k) | -0x80000000
            return np.int32(i).view(np.float32)

        a, b = key_of(lo_v), key_of(hi_v)  # ok(a) False, ok(b) True
        while b - a > 1:
            m = (a + b) // 2
            if ok(val_of(m)):
                b = m
            else:
                a = m
        bound = float(val_of(b))
    if len(_BOUNDS) < 256:
        _BOUNDS[key] = bound
    return bound


def _decode_fast(logits: np.ndarray, gather, anchors: np.ndarray, cfg: DecodeConfig,
                 letterbox) -> Detections:
    """The same arithmetic as :func:`decode_boxes` + :func:`nms`, with few NumPy calls.

    ``logits >= logit_bound(thresh)`` selects exactly the anchors whose score passes, so the
    sigmoid runs on the survivors only (as ST's C post-processing does in the int8 domain). The
    survivors are decoded in anchor order, then put in NMS order once (score descending, ties by
    anchor index), so the candidate cap is a slice and a group holding every candidate is summed
    without gathering it. The NMS rounds are bookkeeping on Python lists (a handful of
    candidates per real frame); the arithmetic stays in float32 NumPy, a fixed number of calls
    per frame (about 40 on a frame with candidates) plus one or two per output. Every
    arithmetic operation and its operands are those of the step-by-step reference functions
    above, so the results are bit-identical (tests check it on random and real outputs).
    """
    clip = float(cfg.score_clip)
    bound = logit_bound(cfg.score_thresh, clip)
    cand = (logits >= bound).nonzero()[0]
    n = cand.size
    if not n:
        return Detections(_NO_BOXES, _NO_KEYPOINTS, _NO_SCORES, 0)
    x = logits[cand]  # a copy: the sigmoid of _sigmoid32 runs in place on it
    # above ~17.3 the float32 sigmoid is 1.0 anyway (the upper clip is moot), and below the
    # bound nothing is a candidate (the lower clip is moot) unless every logit passes
    if clip < 17.5 or bound == -math.inf:
        np.clip(x, _F(-clip), _F(clip), out=x)
    np.negative(x, out=x)
    e = np.exp(x, dtype=np.float64)
    e += 1.0
    s = np.divide(1.0, e, out=e).astype(np.float32)
    r = gather(cand).reshape(-1, 8, 2)  # row 0: centre offset, 1: size, 2..7: keypoints
    a = (anchors if isinstance(anchors, np.ndarray) else np.asarray(anchors)).take(cand, axis=0)
    if a.dtype.char != "f":
        a = a.astype(np.float32)
    if cfg.x_scale != cfg.y_scale or cfg.w_scale != cfg.x_scale or cfg.h_scale != cfg.y_scale:
        boxes, kps = decode_boxes(r.reshape(-1, 16), a, cfg)  # general (rare) scales
        c = np.concatenate([boxes, kps.reshape(-1, 12)], axis=1)
    else:
        scale = _F128 if cfg.x_scale == 128.0 else _F(cfg.x_scale)
        q = r / scale * a[:, None, 2:4]  # raw / 128 * anchor size, every row
        pts = q + a[:, None, 0:2]  # row 0: centre; rows 2..7: keypoints
        # rows 0, 1 <- centre - size * 0.5, centre + size * 0.5 (x + (-h) is x - h exactly)
        pts[:, 0:2] = pts[:, 0:1] + q[:, 1:2] * _MINUS_PLUS_HALF
        c = pts.reshape(-1, 16)
    if n > 1:
        # NMS order: score descending, ties by anchor index (the candidates are in anchor
        # order; Python's sort is stable, also with reverse=True)
        sl = s.tolist()
        order = sorted(range(n), key=sl.__getitem__, reverse=True)
        if order != list(range(n)):
            c, s = c.take(order, axis=0), s.take(order)
    k = int(cfg.max_candidates)
    # pair extents of the box corners (their diagonal is each box's width and height),
    # computed before the validity test when the cap cannot bind
    d = _pair_extents(c) if 1 < n and not 0 < k < n else None
    if d is not None:
        wh = d.diagonal(0, 1, 2)
    else:
        p = c.reshape(-1, 8, 2)
        wh = p[:, 1] - p[:, 0]
    # valid: x1 >= x0 and y1 >= y0 (x1 - x0 >= 0 exactly when x1 >= x0) and no NaN
    if not wh.min() >= 0 or not math.isfinite(c.sum()):
        p = c.reshape(-1, 8, 2)
        ok = (p[:, 1] >= p[:, 0]).all(axis=1) & ~np.isnan(c).any(axis=1)
        c, s, d = c[ok], s[ok], None
        n = c.shape[0]
        if n == 0:
            return Detections(candidates=0)
    valid, dropped = n, 0
    if 0 < k < n:  # the cap: the first k in NMS order
        c, s, n, d, dropped = c[:k], s[:k], k, None, n - k
    cc, tops = _nms_sorted(c, s, cfg.iou_thresh, cfg.nms, cfg.max_detections, d)
    if letterbox is not None:  # (u * size - pad) / scale, x and y alternating along a row
        size, pad, sxy = letterbox.pad_scale
        cc = cc * size
        cc -= pad
        cc /= sxy
    return Detections(cc[:, :4], cc[:, 4:].reshape(-1, 6, 2),
                      s[:1] if tops == [0] else s.take(tops), valid, dropped)


_MINUS_PLUS_HALF = np.array([[-0.5], [0.5]], np.float32)  # (2, 1)
# float32 constants as 0-d arrays: the cheapest operand form for a ufunc (same arithmetic)
_F128 = np.array(128.0, np.float32)
_ONES = np.ones((NUM_ANCHORS, 1), np.float32)
_F64 = np.dtype(np.float64)
# shared zero-size results of frames without candidates (nothing can be written into them)
_NO_BOXES = np.zeros((0, 4), np.float32)
_NO_KEYPOINTS = np.zeros((0, 6, 2), np.float32)
_NO_SCORES = np.zeros((0,), np.float32)
_ZERO = np.array(0.0, np.float32)
_TINY = np.array(1e-45, np.float32)  # the smallest positive float32 (subnormal)


def _pair_extents(c: np.ndarray) -> np.ndarray:
    """(n, 16) coordinates -> (2, n, n): ``[:, i, j]`` = (min(x1) - max(x0), min(y1) - max(y0))
    of boxes i and j, the intersection's width and height in :func:`iou_one_to_many`'s
    operations (coordinate-major, so each operation loops over n, not over 2; the corners are
    copied into a contiguous (4, n) block first, which the broadcast operations read faster)."""
    t = np.ascontiguousarray(c[:, :4].T)
    return np.minimum(t[2:, :, None], t[2:, None, :]) - np.maximum(t[:2, :, None], t[:2, None, :])


def _over_matrix(d: np.ndarray, iou_thresh) -> np.ndarray:
    """Pair extents (:func:`_pair_extents`) of valid boxes -> (n, n) bool, ``[i, j]``:
    IoU(box i, box j) > threshold, with the IoU of :func:`iou_one_to_many` (box i first).

    A non-positive width or height is clamped to 0, so a disjoint pair has intersection 0 and
    IoU 0 (not ``inter / union`` of a negative product) while every intersecting pair keeps its
    exact intersection; the union of valid boxes is never negative and is 0 only when both
    areas are 0 (then the IoU is 0 too), so a union of 0 is replaced by the smallest positive
    float32 instead of testing it: same IoU on every pair, no division by zero."""
    w = np.maximum(d, _ZERO, out=d)  # d is not needed afterwards
    inter = w[0] * w[1]
    area = inter.diagonal()  # w[:, i, i] = (x1 - x0, y1 - y0): the same float operations
    union = area[:, None] + area
    union -= inter
    np.maximum(union, _TINY, out=union)
    return np.divide(inter, union, out=union) > _const32(iou_thresh)


def _const32(v: float) -> np.ndarray:
    """``v`` as a 0-d float32 array (the value ``np.float32(v)``), cached."""
    c = _CONSTS.get(v)
    if c is None:
        c = np.array(v, np.float32)
        if len(_CONSTS) < 64:
            _CONSTS[v] = c
    return c


_CONSTS: dict = {}


def _nms_sorted(c: np.ndarray, s: np.ndarray, iou_thresh: float, kind: str,
                max_detections: int, d: np.ndarray | None = None) -> tuple[np.ndarray, list]:
    """NMS over (n, 16) coordinates in NMS order (best first) -> the outputs' coordinates and
    the position of each output's top.

    The rounds (who is the top, who are its candidates) run on Python lists over the all-pairs
    IoU test computed once; each output's weighted mean is one float32 row sum over its
    candidates in order (an axis-0 sum of a C-contiguous 2-D array adds the rows in order:
    sequential float32 accumulation per column, as MediaPipe and the C harness do; tests check
    it), then one division for all outputs.
    """
    n = s.shape[0]
    weighted = kind == "weighted"
    if n == 1:  # one output: the candidate, or its weighted mean with itself, c * s / s
        if weighted and _iou_self(c[0]) > _F(iou_thresh):
            c = c * s[:, None]
            c /= s[:, None]
        return c, [0]
    over = _over_matrix(_pair_extents(c) if d is None else d, iou_thresh)
    tops, groups = [], []
    remaining = list(range(n))
    while remaining:
        top = remaining[0]
        row = over[top].tolist()
        tops.append(top)
        if weighted:
            members = [j for j in remaining if row[j]]
            if not members:  # zero-area top: MediaPipe emits it and stops
                groups.append(None)
                break
            groups.append(members)
            remaining = [j for j in remaining if not row[j]]
        else:  # hard: the top is always consumed
            remaining = [j for j in remaining[1:] if not row[j]]
        if max_detections and len(tops) >= max_detections:
            break
    if not weighted:
        return c.take(tops, axis=0), tops
    cw = np.concatenate((c, _ONES[:n]), axis=1)  # [c, 1] * s = [c * s, s] exactly
    cw *= s[:, None]
    if len(groups) == 1 and groups[0] is not None:  # one output (the usual real frame)
        members = groups[0]
        acc = (cw if len(members) == n else cw.take(members, axis=0)).sum(axis=0,
                                                                          keepdims=True)
        return acc[:, :16] / acc[:, 16:], tops
    acc = np.empty((len(tops), 17), np.float32)
    for i, members in enumerate(groups):
        if members is None:
            acc[i, :16] = c[tops[i]]
            acc[i, 16] = 1.0  # x / 1 is x
        elif len(members) == 1:
            acc[i] = cw[members[0]]
        else:
            cw.take(members, axis=0).sum(axis=0, out=acc[i])
    return acc[:, :16] / acc[:, 16:], tops


def _iou_self(b: np.ndarray) -> np.float32:
    w = b[2] - b[0]
    h = b[3] - b[1]
    if not (w > 0 and h > 0):
        return _F(0.0)
    inter = w * h
    union = inter + inter - inter
    return inter / union if union > 0 else _F(0.0)
