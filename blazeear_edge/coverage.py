"""Which part of the model's input domain a set of verification images covered.

A verdict is only as wide as the images it was measured on: an export verified on 25x25 crops
upscaled to 128 px never sees a face filling the frame, and the 8x8 head (the large faces) may not
detect anything at all. :func:`domain_coverage` says what the reference (PyTorch fp32) detected on
the images, at the decode threshold, without a candidate cap:

* box widths as a fraction of the network input (the letterboxed frame; the longer side of the
  original image is the full width): min / median / max;
* per head: the same decode restricted to the anchors of the 16x16 head (anchors 0-511, two per
  cell: the small faces) and of the 8x8 head (anchors 512-895, six per cell: the large faces),
  each decoded alone (its detections, their widths, the images on which it found one).

It is a description, not a rule: nothing fails on it. Export records it in the manifest
(``verification.coverage``) and prints it under the summary table.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from .postprocess import DecodeConfig, decode, join_outputs

#: anchor ranges of the two BlazeFace heads in the 896-anchor order
HEADS = (("16x16", 0, 512), ("8x8", 512, 896))


def _widths(ws: list) -> dict | None:
    if not ws:
        return None
    a = np.asarray(ws, np.float64)
    return {"min": round(float(a.min()), 3), "median": round(float(np.median(a)), 3),
            "max": round(float(a.max()), 3)}


def domain_coverage(ref_raw: Sequence, specs, anchors: np.ndarray,
                    cfg: DecodeConfig) -> dict:
    """What the reference detected on these images (see the module doc); a JSON-able dict."""
    free = replace(cfg, max_candidates=0)
    all_w, n_img = [], 0
    heads = {name: {"anchors": [lo, hi], "detections": 0, "images": 0, "w": []}
             for name, lo, hi in HEADS}
    for r in ref_raw:
        regs, logits = join_outputs(r, specs)
        d = decode(regs, logits, anchors, free)
        w = (d.boxes[:, 2] - d.boxes[:, 0]).tolist()
        all_w += w
        n_img += bool(w)
        for name, lo, hi in HEADS:
            only = np.full_like(logits, -np.inf)
            only[lo:hi] = logits[lo:hi]
            h = decode(regs, only, anchors, free)
            hw = (h.boxes[:, 2] - h.boxes[:, 0]).tolist()
            heads[name]["detections"] += len(hw)
            heads[name]["images"] += bool(hw)
            heads[name]["w"] += hw
    return {"images": len(ref_raw), "score_thresh": float(cfg.score_thresh),
            "detections": len(all_w), "images_with_detections": n_img,
            "box_width_of_frame": _widths(all_w),
            "heads": {k: {"anchors": v["anchors"], "detections": v["detections"],
                          "images": v["images"], "box_width_of_frame": _widths(v["w"])}
                      for k, v in heads.items()}}


def coverage_sentence(cov: dict) -> str:
    """One line: the face sizes the verification saw, overall and per head."""

    def span(w):
        if not w:
            return "-"
        if w["min"] == w["max"]:
            return f"{w['min']:.2f}"
        return f"{w['min']:.2f}-{w['max']:.2f} (median {w['median']:.2f})"

    head = "; ".join(f"{k} head alone: {v['detections']} on {v['images']} image(s)"
                     + (f", width {span(v['box_width_of_frame'])}" if v["detections"] else "")
                     for k, v in cov["heads"].items())
    return (f"the reference detected {cov['detections']} face(s) on "
            f"{cov['images_with_detections']}/{cov['images']} image(s) at score >= "
            f"{cov['score_thresh']:g}, box width {span(cov['box_width_of_frame'])} of the "
            f"frame; {head}")


__all__ = ["HEADS", "coverage_sentence", "domain_coverage"]
