"""Compare a device log with the NumPy decode of the same int8 outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Equality criterion (issue 6): same count and order; boxes and keypoints within BOX_TOL
#: (relative to the value when it exceeds 1, i.e. image pixels), scores within SCORE_TOL.
BOX_TOL = 1e-5
SCORE_TOL = 1e-6


@dataclass
class FrameResult:
    index: int
    name: str
    expected: int  # NumPy detections
    got: int | None  # C detections (None: frame missing or failed)
    max_box_err: float = 0.0  # boxes and keypoints
    max_score_err: float = 0.0
    bit_exact: bool = False
    match: bool = False
    instructions: float | None = None  # M55 (QEMU -icount) instructions for the frame
    instructions_decode: float | None = None
    instructions_nms: float | None = None
    problem: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.ascontiguousarray(a, np.float32)
    b = np.ascontiguousarray(b, np.float32)
    return a.shape == b.shape and bool((a.view(np.uint32) == b.view(np.uint32)).all())


def compare_frame(expected, got) -> tuple[float, float, bool, bool, str]:
    """Two :class:`Detections` -> (max box/keypoint error, max score error, bit exact, match,
    problem)."""
    n, m = len(expected), len(got)
    if n != m:
        return float("inf"), float("inf"), False, False, f"{m} detections, NumPy has {n}"
    if n == 0:
        return 0.0, 0.0, True, True, ""
    ec = np.concatenate([expected.boxes.reshape(n, 4), expected.keypoints.reshape(n, 12)], 1)
    gc = np.concatenate([got.boxes.reshape(n, 4), got.keypoints.reshape(n, 12)], 1)
    ec64, gc64 = ec.astype(np.float64), gc.astype(np.float64)
    box_err = float(np.abs(ec64 - gc64).max())
    score_err = float(np.abs(expected.scores.astype(np.float64)
                             - got.scores.astype(np.float64)).max())
    exact = _bits_equal(ec, gc) and _bits_equal(expected.scores, got.scores)
    ok_box = bool((np.abs(ec64 - gc64) <= BOX_TOL * np.maximum(1.0, np.abs(ec64))).all())
    ok_score = score_err <= SCORE_TOL
    problem = "" if ok_box and ok_score else (
        f"box/keypoint error {box_err:.3g}" if not ok_box else f"score error {score_err:.3g}")
    return box_err, score_err, exact, ok_box and ok_score, problem


def compare_log(vectors: Sequence, log, names: Sequence[str] | None = None) -> list[FrameResult]:
    """Each vector against the log's frame of the same index (and name, when given)."""
    by_index = {f.index: f for f in log.frames}
    out = []
    for i, vec in enumerate(vectors):
        name = names[i] if names else vec.name
        fr = by_index.get(i)
        if fr is None:
            out.append(FrameResult(i, name, len(vec.expected), None,
                                   problem="missing from the log"))
            continue
        if fr.error is not None:
            out.append(FrameResult(i, name, len(vec.expected), None,
                                   problem=f"C error code {fr.error}"))
            continue
        if names and fr.name and fr.name != name:
            out.append(FrameResult(i, name, len(vec.expected), len(fr.detections),
                                   problem=f"log frame {i} is {fr.name!r}"))
            continue
        want_space = "image" if vec.letterbox is not None else "input"
        if fr.space != want_space:
            out.append(FrameResult(i, name, len(vec.expected), len(fr.detections),
                                   problem=f"log frame in space={fr.space}, expected "
                                           f"{want_space}"))
            continue
        be, se, exact, match, problem = compare_frame(vec.expected, fr.detections)
        out.append(FrameResult(i, name, len(vec.expected), len(fr.detections), be, se, exact,
                               match, log.instructions(fr), log.instructions(fr, "ticks_decode"),
                               log.instructions(fr, "ticks_nms"), problem))
    extra = sorted(set(by_index) - set(range(len(vectors))))
    if extra:
        out.append(FrameResult(extra[0], "?", 0, len(by_index[extra[0]].detections),
                               problem=f"{len(extra)} frame(s) in the log beyond the vectors"))
    if log.end is None:
        out.append(FrameResult(-1, "(end)", 0, None, problem="the log has no end line"))
    elif log.end.get("status", 0) != 0:
        out.append(FrameResult(-1, "(end)", 0, None,
                               problem=f"the C runner reported status {log.end['status']}"))
    return out
