"""Test vectors: int8 network outputs + the detections the NumPy decode gives for them.

:func:`make_vectors` takes an export manifest (or :class:`HarnessModel`) and, per image, the list
of int8 output arrays in the manifest's output order (from ONNX Runtime / TFLite int8, from a
board, or quantised here from float outputs), and computes the expected detections with
:func:`blazeear_edge.postprocess.decode_outputs`, the reference the C code must reproduce.
:func:`synthetic_vectors` builds the hand-made cases (empty, ties, zero-area boxes, a crowd of
overlapping boxes, every int8 score level, boxes on the image edge, hard NMS with a cap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BlazeEarError
from ..manifest import SCHEMA as MANIFEST_SCHEMA
from ..postprocess import (NUM_ANCHORS, NUM_COORDS, DecodeConfig, Detections, OutputSpec,
                           decode_outputs, dequantize, sigmoid_scores)
from ..preprocess import Letterbox
from .model import C_DTYPES, HarnessModel, c_string, config_initializer, harness_model

VECTORS_SCHEMA = "blazeear-edge/harness-vectors/1"


@dataclass
class Vector:
    """One frame for the C harness."""

    name: str
    outputs: list  # integer arrays in the model's output order
    expected: Detections  # NumPy decode (image pixels when letterbox is set)
    letterbox: Letterbox | None = None
    config: DecodeConfig | None = None  # None: the model's decode configuration
    source: str = ""  # where the outputs came from

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source,
                "letterbox": self.letterbox.to_dict() if self.letterbox else None,
                "config": self.config.to_dict() if self.config else None,
                "count": len(self.expected), "detections": self.expected.to_list()}


def _as_model(manifest, anchors=None, artifact=None) -> HarnessModel:
    if isinstance(manifest, HarnessModel):
        return manifest
    return harness_model(manifest, artifact=artifact, anchors=anchors)


def safe_name(name: str, used: set) -> str:
    base = c_string(str(name))[1:-1] or "frame"
    out, k = base, 1
    while out in used:
        k += 1
        out = f"{base}~{k}"
    used.add(out)
    return out


def check_outputs(model: HarnessModel, outputs: Sequence, where: str) -> list[np.ndarray]:
    """Integer arrays matching the specs (dtype and element count), reshaped to (count, C)."""
    if isinstance(outputs, dict):
        missing = [s.name for s in model.specs if s.name not in outputs]
        if missing:
            raise BlazeEarError(f"{where}: outputs missing: {', '.join(missing)}")
        outputs = [outputs[s.name] for s in model.specs]
    if len(outputs) != len(model.specs):
        raise BlazeEarError(f"{where}: {len(outputs)} output arrays, the model has "
                            f"{len(model.specs)} ({', '.join(s.name for s in model.specs)})")
    out = []
    for arr, s in zip(outputs, model.specs):
        a = np.asarray(arr)
        want = np.dtype(C_DTYPES[s.dtype][2])
        if a.dtype != want:
            raise BlazeEarError(f"{where}: output {s.name} is {a.dtype}, the manifest says "
                                f"{want} (quantise float outputs with quantize_outputs first)")
        cols = NUM_COORDS if s.kind == "regressors" else 1
        if a.size != s.anchor_count * cols:
            raise BlazeEarError(f"{where}: output {s.name} has {a.size} values, expected "
                                f"{s.anchor_count} x {cols}")
        out.append(np.ascontiguousarray(a.reshape(s.anchor_count, cols)))
    return out


def make_vectors(manifest, outputs: Sequence, *, names: Sequence[str] | None = None,
                 letterboxes: Sequence[Letterbox | None] | None = None,
                 anchors=None, artifact: str | None = None,
                 config: DecodeConfig | None = None, source: str = "") -> list[Vector]:
    """Test vectors from int8 network outputs.

    ``manifest``: a Manifest, a manifest dict (with ``anchors``) or a :class:`HarnessModel`.
    ``outputs``: per image, the int8 arrays in the manifest's output order (or a dict by name).
    ``letterboxes``: per image, the letterbox to undo (the C code then logs image pixels) or None.
    ``config``: a decode configuration for these vectors only (default: the manifest's).
    """
    model = _as_model(manifest, anchors, artifact)
    names = list(names) if names is not None else [f"frame{i}" for i in range(len(outputs))]
    lbs = list(letterboxes) if letterboxes is not None else [None] * len(outputs)
    if len(names) != len(outputs) or len(lbs) != len(outputs):
        raise BlazeEarError("make_vectors: names, letterboxes and outputs differ in length")
    cfg = config or model.config
    vecs = []
    for name, outs, lb in zip(names, outputs, lbs):
        arrs = check_outputs(model, outs, f"vector {name}")
        det = decode_outputs(arrs, model.anchors, cfg, model.specs, letterbox=lb)
        vecs.append(Vector(str(name), arrs, det, lb, config, source))
    return vecs


# ---------------------------------------------------------------------------------------------
# quantisation of float outputs (PyTorch / float ONNX) for vectors made without an int8 model
# ---------------------------------------------------------------------------------------------
def quantize_specs(float_outputs: Sequence[Sequence[np.ndarray]],
                   specs: Sequence[OutputSpec], score_clip: float | None = 16.0,
                   dtype: str = "int8") -> list[OutputSpec]:
    """Per-tensor asymmetric min/max int8 parameters from float outputs (one list per image).

    Logits are first limited to +-``score_clip`` as the exporter's graph does (background logits
    reach -1000s and would otherwise set the range).
    """
    info = np.iinfo(C_DTYPES[dtype][2])
    out = []
    for i, s in enumerate(specs):
        vals = np.concatenate([np.asarray(o[i], np.float64).ravel() for o in float_outputs])
        if s.kind == "scores" and score_clip:
            vals = np.clip(vals, -score_clip, score_clip)
        lo, hi = min(float(vals.min()), 0.0), max(float(vals.max()), 0.0)
        scale = float(np.float32((hi - lo) / (info.max - info.min) or 1.0))
        zp = int(np.clip(round(info.min - lo / scale), info.min, info.max))
        out.append(OutputSpec(s.name, s.kind, s.anchor_start, s.anchor_count, dtype, scale, zp,
                              list(s.shape) or [1, s.anchor_count,
                                                NUM_COORDS if s.kind == "regressors" else 1]))
    return out


def quantize_outputs(float_outputs: Sequence[np.ndarray],
                     specs: Sequence[OutputSpec]) -> list[np.ndarray]:
    """Float outputs of one image -> integer arrays with each spec's scale and zero point."""
    res = []
    for x, s in zip(float_outputs, specs):
        info = np.iinfo(C_DTYPES[s.dtype][2])
        q = np.round(np.asarray(x, np.float64) / s.scale) + s.zero_point
        res.append(np.clip(q, info.min, info.max).astype(C_DTYPES[s.dtype][2]))
    return res


def minimal_manifest(specs: Sequence[OutputSpec], anchors: np.ndarray,
                     config: DecodeConfig | None = None, name: str = "model",
                     artifact: str = "int8_tflite", input: dict | None = None) -> dict:
    """A manifest dict with one int8 artifact, for vectors made before an export exists."""
    return {"schema": MANIFEST_SCHEMA, "name": name,
            "artifacts": {artifact: {"format": "tflite", "precision": "int8",
                                     "input": input or {"dtype": "float32",
                                                        "shape": [1, 128, 128, 3],
                                                        "layout": "NHWC"},
                                     "outputs": [{**s.to_dict(), "quantization": {
                                         "dtype": s.dtype, "scale": s.scale,
                                         "zero_point": s.zero_point}} for s in specs]}},
            "anchors": np.asarray(anchors, np.float32),
            "decode": (config or DecodeConfig()).to_dict()}


# ---------------------------------------------------------------------------------------------
# hand-built cases
# ---------------------------------------------------------------------------------------------
def _q(spec: OutputSpec, real) -> np.ndarray:
    info = np.iinfo(C_DTYPES[spec.dtype][2])
    q = np.round(np.asarray(real, np.float64) / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(C_DTYPES[spec.dtype][2])


def _score_qmin(spec: OutputSpec, cfg: DecodeConfig) -> int:
    """Smallest integer score level whose float score passes (what the C pre-filter finds)."""
    info = np.iinfo(C_DTYPES[spec.dtype][2])
    levels = np.arange(info.min, info.max + 1)
    s = sigmoid_scores(dequantize(levels.astype(C_DTYPES[spec.dtype][2]), spec.scale,
                                  spec.zero_point), cfg.score_clip)
    ok = np.nonzero(s >= np.float32(cfg.score_thresh))[0]
    return int(levels[ok[0]]) if ok.size else info.max + 1


class _Frame:
    """Mutable per-anchor real values -> int8 tensors with the model's quantisation."""

    def __init__(self, model: HarnessModel, fill_logit: float | None = None):
        self.model = model
        self.regs = np.zeros((NUM_ANCHORS, NUM_COORDS), np.float64)
        self.score_q = {}  # anchor -> explicit integer level
        self.logits = np.full(NUM_ANCHORS, -1e9 if fill_logit is None else fill_logit)

    def outputs(self) -> list[np.ndarray]:
        out = []
        for s in self.model.specs:
            sl = slice(s.anchor_start, s.anchor_start + s.anchor_count)
            if s.kind == "regressors":
                out.append(_q(s, self.regs[sl]))
            else:
                q = _q(s, self.logits[sl]).reshape(-1, 1)
                for a, level in self.score_q.items():
                    if s.anchor_start <= a < s.anchor_start + s.anchor_count:
                        info = np.iinfo(C_DTYPES[s.dtype][2])
                        q[a - s.anchor_start, 0] = int(np.clip(level, info.min, info.max))
                out.append(q)
        return out

    def box(self, a: int, cx: float, cy: float, w: float, h: float, logit: float):
        """Place a box (normalised centre and size) on anchor a through its regressors."""
        ax, ay, aw, ah = (float(v) for v in self.model.anchors[a])
        cfg = self.model.config
        self.regs[a, 0] = (cx - ax) / aw * cfg.x_scale
        self.regs[a, 1] = (cy - ay) / ah * cfg.y_scale
        self.regs[a, 2] = w / aw * cfg.w_scale
        self.regs[a, 3] = h / ah * cfg.h_scale
        for k in range(6):  # keypoints spread over the box
            self.regs[a, 4 + 2 * k] = (cx + w * (k / 5.0 - 0.5) - ax) / aw * cfg.x_scale
            self.regs[a, 5 + 2 * k] = (cy + h * ((k % 3) / 2.0 - 0.5) - ay) / ah * cfg.y_scale
        self.logits[a] = logit


def _fits(model: HarnessModel, a: int, cx, cy, w, h) -> bool:
    """Whether a box is representable on anchor a with the int8 regressor ranges."""
    ax, ay, aw, ah = (float(v) for v in model.anchors[a])
    cfg = model.config
    vals = [(cx - ax) / aw * cfg.x_scale, (cy - ay) / ah * cfg.y_scale,
            w / aw * cfg.w_scale, h / ah * cfg.h_scale]
    reg = next(s for s in model.specs if s.kind == "regressors"
               and s.anchor_start <= a < s.anchor_start + s.anchor_count)
    info = np.iinfo(C_DTYPES[reg.dtype][2])
    lo, hi = (info.min - reg.zero_point) * reg.scale, (info.max - reg.zero_point) * reg.scale
    return all(lo * 0.9 <= v <= hi * 0.9 for v in vals)


def all_above_disjoint(model: HarnessModel, rng=None) -> list[np.ndarray]:
    """Every anchor above the threshold with its own small box, no two overlapping: each NMS
    round removes only its top, so NMS does n rounds over n candidates (the quadratic worst
    case; ``max_candidates`` bounds n)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    f = _Frame(model)
    seen: dict = {}
    for a in range(NUM_ANCHORS):
        ax, ay = (float(v) for v in model.anchors[a][:2])
        k = seen.setdefault((round(ax, 4), round(ay, 4)), [])
        k.append(a)
        j = len(k) - 1  # anchors sharing a centre (2 or 6) get their own spot around it
        # sizes and spacing survive the int8 rounding of the default export's regressors
        # (8x8 scale ~1.5, i.e. steps of 0.012 in normalised units): all 896 stay separate
        step, size = (0.026, 0.013) if a >= 512 else (0.011, 0.006)
        cx, cy = ax + step * (j % 3 - 1), ay + step * (j // 3 - 0.5)
        f.box(a, cx, cy, size, size, float(rng.uniform(1.0, 6.0)))
    return f.outputs()


def cap_ties(model: HarnessModel) -> list[tuple]:
    """Ten candidates under a cap of 6, best first: one invalid box (negative width) on top,
    then scores 7, 7, 5, 5, 5, 5, 5, 3 (int8 levels, equal levels tie exactly) on disjoint
    boxes, so the cut falls inside the run of 5s: the cap must keep the tied candidates with the
    lowest anchor indices, in weighted and hard NMS alike."""
    cfg = model.config
    f = _Frame(model)
    a0 = 2 * (16 * 4 + 2)  # 16x16 grid cell (row 4, col 2)
    anchors = [a0 + 2 * 3 * j for j in range(10)]  # every third cell of that row, first anchor
    logits = [9.0, 7.0, 7.0, 5.0, 5.0, 5.0, 5.0, 5.0, 3.0, 5.0]
    for j, (a, lg) in enumerate(zip(anchors, logits)):
        ax, ay = (float(v) for v in model.anchors[a][:2])
        f.box(a, ax, ay, 0.03, 0.03, lg)
    f.regs[anchors[0], 2] = -2.0  # the best box has a negative width: dropped before the cap
    # the same level for every logit written as 5.0 (int8 rounding could split them)
    outs = f.outputs()
    capped = replace(cfg, max_candidates=6)
    return [("cap_ties", outs, None, capped),
            ("cap_ties_hard", outs, None, replace(capped, nms="hard", iou_thresh=0.0))]


def iou_at_threshold(model: HarnessModel) -> list[tuple]:
    """Two overlapping boxes, the IoU threshold set to exactly their float32 IoU (computed with
    the operations the C code uses), in weighted and hard NMS."""
    from ..postprocess import iou_one_to_many

    f = _Frame(model)
    a0 = 2 * (16 * 8 + 8)  # 16x16 grid cell (8, 8)
    f.box(a0, 0.53, 0.53, 0.2, 0.2, 4.0)
    f.box(a0 + 2, 0.58, 0.55, 0.2, 0.18, 2.0)  # the next cell: IoU about 0.6
    outs = f.outputs()
    apart = replace(model.config, nms="hard", iou_thresh=1.0, max_candidates=0)
    dets = decode_outputs(outs, model.anchors, apart, model.specs)  # both boxes, best first
    if len(dets) != 2:
        raise BlazeEarError(f"iou_at_threshold: {len(dets)} boxes decoded, expected 2")
    iou = float(iou_one_to_many(dets.boxes[0], dets.boxes[1:2])[0])
    at = replace(model.config, iou_thresh=iou)
    return [("iou_at_threshold", outs, None, at),
            ("iou_at_threshold_hard", outs, None, replace(at, nms="hard"))]


def synthetic_vectors(manifest, anchors=None, artifact: str | None = None,
                      seed: int = 0) -> list[Vector]:
    """Hand-built int8 cases with the model's own quantisation (expected from the NumPy decode).

    * ``empty``: every score at the lowest level (no detection);
    * ``below_threshold``: every score one level below the first passing one;
    * ``threshold_levels``: scores at the last failing, first passing and next levels, so the
      int8 pre-filter's boundary must equal the float check;
    * ``ties``: equal scores on overlapping boxes (order by anchor index, weighted merge);
    * ``zero_area``: the best box has zero width (weighted NMS stops after it);
    * ``crowd``: a few hundred overlapping boxes with random scores (weighted NMS);
    * ``all_levels``: every anchor passes (threshold 0), scores through every int8 level,
      random regressors (negative sizes are dropped) -- about 800 candidates, many ties;
    * ``all_levels_every_score``: the same with hard NMS at IoU 1 (no suppression), so every
      candidate is printed: the sigmoid of all 256 levels of each score tensor is compared;
    * ``crowd_hard_max3``: the crowd with hard NMS and at most 3 detections;
    * ``all_above_disjoint``: every anchor above the threshold, each with its own small box
      that overlaps no other (no merging): the worst case of the quadratic NMS, bounded by the
      model's candidate cap (``decode.max_candidates``);
    * ``cap_ties`` / ``cap_ties_hard``: more valid candidates than a cap of 6, with equal scores
      straddling the cut (the cap keeps the lowest anchor indices among the tied) and an
      invalid box among the best (skipped, not counted);
    * ``iou_at_threshold`` / ``iou_at_threshold_hard``: two overlapping boxes with the IoU
      threshold set to exactly their float32 IoU: "IoU > threshold" keeps them apart (two
      detections); an implementation testing ">=" would merge / suppress them;
    * ``edge_letterbox``: boxes touching and crossing the image edges, mapped back through a
      640x480 letterbox.
    """
    model = _as_model(manifest, anchors, artifact)
    cfg = model.config
    rng = np.random.default_rng(seed)
    score_specs = [s for s in model.specs if s.kind == "scores"]
    vecs: list[tuple[str, list, Letterbox | None, DecodeConfig | None]] = []

    f = _Frame(model)
    for s in score_specs:
        info = np.iinfo(C_DTYPES[s.dtype][2])
        for a in range(s.anchor_start, s.anchor_start + s.anchor_count):
            f.score_q[a] = info.min
    vecs.append(("empty", f.outputs(), None, None))

    f = _Frame(model)
    for s in score_specs:
        qmin = _score_qmin(s, cfg)
        for a in range(s.anchor_start, s.anchor_start + s.anchor_count):
            f.score_q[a] = qmin - 1
    vecs.append(("below_threshold", f.outputs(), None, None))

    f = _Frame(model)
    for s in score_specs:
        qmin = _score_qmin(s, cfg)
        for a in range(s.anchor_start, s.anchor_start + s.anchor_count, 7):
            f.box(a, *model.anchors[a][:2], 0.05, 0.05, -1e9)
            f.score_q[a] = qmin - 1 + (a // 7) % 3
    vecs.append(("threshold_levels", f.outputs(), None, None))

    # ties: identical scores, overlapping boxes on neighbouring anchors of the 16x16 grid
    f = _Frame(model)
    a0 = 2 * (16 * 8 + 8)  # cell (8, 8)
    for j, a in enumerate(range(a0, a0 + 6)):
        if a < NUM_ANCHORS:
            f.box(a, 0.55 + 0.004 * j, 0.55, 0.2, 0.25, 3.0)
    f.box(a0 + 40, 0.2, 0.2, 0.1, 0.1, 3.0)  # a separate tie elsewhere
    vecs.append(("ties", f.outputs(), None, None))

    # zero area: the best box has zero width; a weaker normal box overlaps it
    f = _Frame(model)
    f.box(a0, 0.5, 0.5, 0.0, 0.2, 6.0)
    f.box(a0 + 2, 0.5, 0.5, 0.2, 0.2, 2.0)
    vecs.append(("zero_area", f.outputs(), None, None))

    # crowd: many overlapping boxes around three centres, random scores
    f = _Frame(model)
    centres = [(0.3, 0.35), (0.62, 0.4), (0.5, 0.7)]
    for a in rng.permutation(NUM_ANCHORS)[:300]:
        cx, cy = centres[int(a) % 3]
        cx += rng.normal(0, 0.03)
        cy += rng.normal(0, 0.03)
        w, h = rng.uniform(0.12, 0.25), rng.uniform(0.12, 0.25)
        if _fits(model, int(a), cx, cy, w, h):
            f.box(int(a), cx, cy, w, h, rng.uniform(-1.0, 8.0))
    crowd = f.outputs()
    vecs.append(("crowd", crowd, None, None))
    vecs.append(("crowd_hard_max3", crowd, None,
                 replace(cfg, nms="hard", max_detections=3)))

    # every anchor passes, every score level, random regressors (sizes >= 0 on most anchors)
    outs, outs_valid = [], []
    for s in model.specs:
        info = np.iinfo(C_DTYPES[s.dtype][2])
        if s.kind == "scores":
            lv = (np.arange(s.anchor_start, s.anchor_start + s.anchor_count) * 37) % 256
            outs.append((lv + info.min).astype(C_DTYPES[s.dtype][2]).reshape(-1, 1))
            outs_valid.append(outs[-1])
        else:
            r = rng.integers(info.min, info.max + 1, size=(s.anchor_count, NUM_COORDS))
            r[:, 2:4] = rng.integers(s.zero_point, info.max + 1, size=(s.anchor_count, 2))
            outs_valid.append(r.astype(C_DTYPES[s.dtype][2]))
            neg = rng.random(s.anchor_count) < 0.1  # a tenth with random (negative) sizes
            r[neg, 2:4] = rng.integers(info.min, info.max + 1, size=(int(neg.sum()), 2))
            outs.append(r.astype(C_DTYPES[s.dtype][2]))
    vecs.append(("all_levels", outs, None, replace(cfg, score_thresh=0.0, max_candidates=0)))
    # hard NMS at IoU 1 suppresses nothing, so every candidate (all sizes >= 0) is printed:
    # the score of every int8 level of every score tensor, and 896 decodes
    vecs.append(("all_levels_every_score", outs_valid, None,
                 replace(cfg, score_thresh=0.0, nms="hard", iou_thresh=1.0, max_candidates=0)))
    vecs.append(("all_above_disjoint", all_above_disjoint(model, rng), None, None))
    vecs += cap_ties(model)
    vecs += iou_at_threshold(model)

    # boxes on and across the edges of a 640x480 image (letterboxed into 128x128)
    f = _Frame(model)
    lb = Letterbox.for_image(640, 480)
    top = lb.pad_y / 128.0
    bottom = (lb.pad_y + lb.new_h) / 128.0
    edge_boxes = [(0.05, 0.5, 0.1, 0.1), (0.95, 0.5, 0.1, 0.1), (0.5, top + 0.05, 0.1, 0.1),
                  (0.5, bottom - 0.05, 0.1, 0.1), (0.0, 0.5, 0.12, 0.1), (1.0, 0.45, 0.12, 0.1),
                  (0.3, top, 0.1, 0.14)]
    for j, (cx, cy, w, h) in enumerate(edge_boxes):
        best = min(range(NUM_ANCHORS),
                   key=lambda a: (model.anchors[a][0] - cx) ** 2 + (model.anchors[a][1] - cy) ** 2
                   + (0 if _fits(model, a, cx, cy, w, h) else 10.0))
        f.box(best, cx, cy, w, h, 2.0 + 0.5 * j)
    vecs.append(("edge_letterbox", f.outputs(), lb, None))

    out = []
    for name, outs, lb, vcfg in vecs:
        out += make_vectors(model, [outs], names=[name], letterboxes=[lb], config=vcfg,
                            source="hand-built")
    return out


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def vectors_source(model: HarnessModel, vectors: Sequence[Vector]) -> str:
    """``blazeear_vectors.c``: the int8 outputs of every vector as constant arrays."""
    if not vectors:
        raise BlazeEarError("no test vectors to write")
    lines = ["/* blazeear_vectors.c: generated by `blazeear-edge harness`. Do not edit. */",
             "#include <stdint.h>", "", '#include "blazeear_vectors.h"', ""]
    used: set = set()
    entries = []
    for v, vec in enumerate(vectors):
        arrs = check_outputs(model, vec.outputs, f"vector {vec.name}")
        refs = []
        for t, (a, s) in enumerate(zip(arrs, model.specs)):
            ctype = C_DTYPES[s.dtype][1]
            flat = a.ravel()
            lines.append(f"static const {ctype} v{v}_t{t}[{flat.size}] = {{")
            for i in range(0, flat.size, 32):
                lines.append("    " + ",".join(str(int(x)) for x in flat[i:i + 32]) + ",")
            lines.append("};")
            refs.append(f"v{v}_t{t}")
        cfg_ref = "0"
        if vec.config is not None:
            lines.append(f"static const blazeear_pp_config_t v{v}_config = "
                         f"{config_initializer(vec.config)};")
            cfg_ref = f"&v{v}_config"
        lines.append("")
        lb = vec.letterbox
        lbs = (f"1, {{{lb.width}, {lb.height}, {lb.new_w}, {lb.new_h}, {lb.pad_x}, {lb.pad_y}, "
               f"{lb.size}}}" if lb else "0, {0, 0, 0, 0, 0, 0, 0}")
        name = safe_name(vec.name, used)
        entries.append(f"    {{\"{name}\", {{{', '.join(refs)}}}, {lbs}, {cfg_ref}}},")
    lines.append("const blazeear_vector_t blazeear_vectors[] = {")
    lines += entries
    lines += ["};", f"const int blazeear_num_vectors = {len(vectors)};", ""]
    return "\n".join(lines)


def logged_names(vectors: Sequence[Vector]) -> list[str]:
    """The names the C code prints for these vectors (sanitised, unique)."""
    used: set = set()
    return [safe_name(v.name, used) for v in vectors]


def expected_json(model: HarnessModel, vectors: Sequence[Vector]) -> dict:
    names = logged_names(vectors)
    return {"schema": VECTORS_SCHEMA, "model": model.name, "artifact": model.artifact,
            "manifest": model.source, "decode": model.config.to_dict(),
            "outputs": [s.to_dict() for s in model.specs],
            "vectors": [dict(v.to_dict(), index=i, logged_name=n)
                        for i, (v, n) in enumerate(zip(vectors, names))]}


def save_vectors(path: str | Path, model: HarnessModel, vectors: Sequence[Vector]) -> Path:
    """The raw integer outputs as ``.npz`` (``v{i}/{output name}`` keys) beside expected.json."""
    path = Path(path)
    arrays = {f"v{i}/{s.name}": a for i, v in enumerate(vectors)
              for a, s in zip(v.outputs, model.specs)}
    np.savez_compressed(path, **arrays)
    return path


def write_expected(path: str | Path, model: HarnessModel, vectors: Sequence[Vector]) -> Path:
    path = Path(path)
    path.write_text(json.dumps(expected_json(model, vectors), indent=1) + "\n")
    return path
