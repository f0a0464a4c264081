"""When the candidate cap binds: how often, how many candidates it dropped, what it changed.

The candidate cap (``DecodeConfig.max_candidates``, the manifest's ``decode.max_candidates``) is a
property of the board's decode: it bounds the quadratic NMS on the Cortex-M55. On the host a
decode reproduces the model's full decode unless a cap is asked for (``--max-candidates K``) or
comes with an export manifest. Wherever a cap applies, every command that decodes says when it
bound, with the figures of :class:`CapStats`:

* ``frames_bound``: frames on which the cap kept at least one valid candidate out of NMS, and
  ``candidates_dropped``, the sum over frames of (valid candidates - K);
* ``frames_changed``: frames on which the capped decode differs from the uncapped decode of the
  *same* outputs (a different count, or a detection whose box, keypoints or score moved), with
  ``detections_lost`` (uncapped detections the capped decode does not have) and
  ``detections_moved`` (detections present in both whose weighted-NMS mean changed because
  some of their candidates were dropped).

The cap keeps the first K candidates in NMS order, and NMS decides who is a top from the boxes
before it only, so the capped decode's detections are the first ones of the uncapped decode
(hard NMS: identical; weighted NMS: the same tops, their means over fewer candidates); they are
compared position by position.

Only frames on which the cap bound are decoded a second time (without the cap): on a frame where
it did not bind both decodes are the same by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from .postprocess import DecodeConfig, Detections, decode_outputs

#: frame names listed in a report (the counts cover every frame)
MAX_NAMES = 10


@dataclass
class CapStats:
    max_candidates: int  #: K; 0 = no cap (then nothing can bind)
    frames: int = 0
    frames_bound: int = 0
    candidates_dropped: int = 0
    most_candidates: int = 0  #: most valid candidates seen on one frame
    frames_changed: int = 0
    detections: int = 0  #: capped decode, all frames
    detections_uncapped: int = 0  #: the same outputs decoded without the cap, all frames
    detections_lost: int = 0
    detections_moved: int = 0
    bound_frames: list = field(default_factory=list)  #: names (or indices) of the first few

    @property
    def bound(self) -> bool:
        return self.frames_bound > 0

    @property
    def changed(self) -> bool:
        return self.frames_changed > 0

    def add(self, capped: Detections, uncapped: Detections | None, name=None) -> None:
        """Account one frame: its capped decode and, when the cap bound, its uncapped one."""
        self.frames += 1
        self.detections += len(capped)
        self.most_candidates = max(self.most_candidates, int(capped.candidates))
        if capped.cap_dropped <= 0 or uncapped is None:
            self.detections_uncapped += len(capped)
            return
        self.frames_bound += 1
        self.candidates_dropped += int(capped.cap_dropped)
        if len(self.bound_frames) < MAX_NAMES:
            self.bound_frames.append(self.frames - 1 if name is None else name)
        self.detections_uncapped += len(uncapped)
        lost, moved = frame_difference(capped, uncapped)
        self.detections_lost += lost
        self.detections_moved += moved
        if lost or moved or len(capped) != len(uncapped):
            self.frames_changed += 1

    def to_dict(self) -> dict:
        return {"max_candidates": self.max_candidates, "frames": self.frames,
                "frames_bound": self.frames_bound,
                "candidates_dropped": self.candidates_dropped,
                "most_candidates": self.most_candidates,
                "frames_changed": self.frames_changed, "detections": self.detections,
                "detections_uncapped": self.detections_uncapped,
                "detections_lost": self.detections_lost,
                "detections_moved": self.detections_moved,
                "bound_frames": [str(x) for x in self.bound_frames]}

    def sentence(self) -> str:
        """One line a user reads: did the cap bind, and what did it change."""
        k = self.max_candidates
        if not k:
            return "no candidate cap (max_candidates 0): the full decode"
        if not self.bound:
            return (f"candidate cap K={k} never bound on {self.frames} frame(s) (at most "
                    f"{self.most_candidates} candidates on a frame)")
        out = (f"candidate cap K={k} bound on {self.frames_bound}/{self.frames} frame(s), "
               f"{self.candidates_dropped} candidate(s) dropped (at most "
               f"{self.most_candidates} on a frame)")
        if self.changed:
            out += (f"; it changed the output on {self.frames_changed} frame(s): "
                    f"{self.detections} detections instead of {self.detections_uncapped} "
                    f"without the cap ({self.detections_lost} lost, {self.detections_moved} "
                    f"moved)")
        else:
            out += "; the output is the same as without the cap"
        return out


def frame_difference(capped: Detections, uncapped: Detections) -> tuple[int, int]:
    """(lost, moved): uncapped detections the capped decode lacks, and detections present in
    both (same position in NMS order) whose box, keypoints or score differ."""
    n = min(len(capped), len(uncapped))
    lost = len(uncapped) - n
    moved = 0
    for i in range(n):
        if not (np.array_equal(capped.boxes[i], uncapped.boxes[i])
                and np.array_equal(capped.keypoints[i], uncapped.keypoints[i])
                and capped.scores[i] == uncapped.scores[i]):
            moved += 1
    return lost, moved


def uncapped(cfg: DecodeConfig) -> DecodeConfig:
    return replace(cfg, max_candidates=0)


def cap_stats(raw: Sequence, anchors: np.ndarray, cfg: DecodeConfig, specs,
              dets: Sequence[Detections] | None = None, names: Sequence | None = None,
              letterboxes: Sequence | None = None) -> tuple[list, CapStats]:
    """Decode ``raw`` (one runtime's outputs per frame) with ``cfg`` (unless ``dets``, that
    decode, is given) and measure what the cap did; returns (capped detections, stats)."""
    stats = CapStats(int(cfg.max_candidates))
    free = uncapped(cfg)
    out = []
    for i, r in enumerate(raw):
        lb = None if letterboxes is None else letterboxes[i]
        d = dets[i] if dets is not None else decode_outputs(r, anchors, cfg, specs,
                                                            letterbox=lb)
        u = decode_outputs(r, anchors, free, specs, letterbox=lb) if d.cap_dropped > 0 else None
        stats.add(d, u, None if names is None else names[i])
        out.append(d)
    return out, stats


__all__ = ["CapStats", "MAX_NAMES", "cap_stats", "frame_difference", "uncapped"]
