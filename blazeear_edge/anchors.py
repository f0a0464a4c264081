"""Anchors: MediaPipe SSD anchors (unit size), BlazeEar v2 ear priors, or a ``.npy`` table.

Every table is (896, 4) float32 rows ``(x_center, y_center, w, h)`` in units of the 128x128 input,
in MediaPipe's order: the 16x16 grid (2 anchors per cell) then the 8x8 grid (6 per cell), looping
y, x, anchor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BlazeEarError

NUM_ANCHORS = 896


@dataclass(frozen=True)
class SsdAnchorOptions:
    """MediaPipe ``SsdAnchorsCalculatorOptions`` for the short-range (front) face model."""

    num_layers: int = 4
    min_scale: float = 0.1484375
    max_scale: float = 0.75
    input_size_height: int = 128
    input_size_width: int = 128
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    strides: tuple = (8, 16, 16, 16)
    aspect_ratios: tuple = (1.0,)
    reduce_boxes_in_lowest_layer: bool = False
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = True


#: BlazeEar v2 ear priors (w, h), normalised: per anchor slot of each grid.
EAR_PRIORS = {
    16: [(0.027, 0.044), (0.049, 0.095)],
    8: [(0.069, 0.161), (0.136, 0.156), (0.114, 0.245), (0.228, 0.395), (0.507, 0.696),
        (0.748, 1.017)],
}

ANCHOR_KINDS = ("unit", "ear")


def _scale(min_scale, max_scale, idx, n):
    if n == 1:
        return (min_scale + max_scale) * 0.5
    return min_scale + (max_scale - min_scale) * idx / (n - 1.0)


def ssd_anchors(opts: SsdAnchorOptions = SsdAnchorOptions()) -> np.ndarray:
    """Port of MediaPipe's SsdAnchorsCalculator (layers with equal strides merge)."""
    rows = []
    layer_id = 0
    n = opts.num_layers
    while layer_id < n:
        aspect_ratios, scales = [], []
        last = layer_id
        while last < n and opts.strides[last] == opts.strides[layer_id]:
            scale = _scale(opts.min_scale, opts.max_scale, last, n)
            if last == 0 and opts.reduce_boxes_in_lowest_layer:
                aspect_ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for ar in opts.aspect_ratios:
                    aspect_ratios.append(ar)
                    scales.append(scale)
                if opts.interpolated_scale_aspect_ratio > 0.0:
                    nxt = 1.0 if last == n - 1 else _scale(opts.min_scale, opts.max_scale,
                                                           last + 1, n)
                    scales.append(np.sqrt(scale * nxt))
                    aspect_ratios.append(opts.interpolated_scale_aspect_ratio)
            last += 1
        stride = opts.strides[layer_id]
        fh = int(np.ceil(opts.input_size_height / stride))
        fw = int(np.ceil(opts.input_size_width / stride))
        for y in range(fh):
            for x in range(fw):
                for ar, sc in zip(aspect_ratios, scales):
                    xc = (x + opts.anchor_offset_x) / fw
                    yc = (y + opts.anchor_offset_y) / fh
                    if opts.fixed_anchor_size:
                        w = h = 1.0
                    else:
                        r = np.sqrt(ar)
                        w, h = sc * r, sc / r
                    rows.append((xc, yc, w, h))
        layer_id = last
    return np.asarray(rows, dtype=np.float32)


def ear_anchors() -> np.ndarray:
    """Unit-anchor centres with BlazeEar v2's per-slot (w, h) ear priors."""
    a = ssd_anchors().copy()
    a[:512, 2:] = np.tile(np.asarray(EAR_PRIORS[16], np.float32), (256, 1))
    a[512:, 2:] = np.tile(np.asarray(EAR_PRIORS[8], np.float32), (64, 1))
    return a


@dataclass
class Anchors:
    """An anchor table and where it came from (recorded in the export manifest)."""

    table: np.ndarray
    kind: str  # "unit", "ear" or "file"
    source: str = ""
    notes: list = field(default_factory=list)


def load_anchor_file(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise BlazeEarError(f"anchor file not found: {path}")
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise BlazeEarError(f"{path}: not a readable .npy anchor table ({exc})") from None
    if a.shape != (NUM_ANCHORS, 4):
        raise BlazeEarError(f"{path}: anchor table must have shape (896, 4), got {a.shape}")
    if not np.issubdtype(a.dtype, np.floating) or not np.isfinite(a).all():
        raise BlazeEarError(f"{path}: anchor table must hold finite floats")
    return a.astype(np.float32)


def resolve_anchors(spec: str | None, default_kind: str = "unit") -> Anchors:
    """``spec`` is ``unit``, ``ear``, a ``.npy`` path, or None for the checkpoint's default."""
    kind = spec or default_kind
    if kind == "unit":
        return Anchors(ssd_anchors(), "unit", "MediaPipe SsdAnchorsCalculator, fixed size")
    if kind == "ear":
        return Anchors(ear_anchors(), "ear", "BlazeEar v2 ear priors")
    return Anchors(load_anchor_file(kind), "file", str(kind))
