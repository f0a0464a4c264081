"""Int8 judged against the fp32 model's own noise floor: the "equivalent camera noise".

A camera frame is never the same twice: every pixel of an 8-bit sensor moves by a level or two
between two shots of the same scene. So the fp32 model itself does not give the same output twice,
and an int8 model cannot be asked to agree with fp32 better than fp32 agrees with itself under that
noise. This module measures both on the same images and states the int8 error in the camera's own
unit:

    equivalent camera noise of an artifact = the smallest +-k levels (of 255) of uniform integer
    pixel noise under which the fp32 model disturbs its own detections at least as much as the
    int8 artifact does, on every figure of :data:`FIGURES` (recall, precision, mean IoU of the
    detections at the decode threshold, worst relevant-anchor SQNR of the raw outputs).

"+-2 levels" reads: int8 changes the detections no more than two levels of sensor noise change
the fp32 model's. Each figure also gets its own level (which figure sets the verdict is visible),
and the level is "> +-16" when even 16 levels disturb fp32 less than int8.

The noise is added to the pre-processed input (``x = p / 127.5 - 1``) in steps of ``2 / 255``, so a
noisy frame is still exactly a frame of 8-bit pixels (uint8-input artifacts see real bytes), then
clipped to the pixel range. Draws are seeded: the same images give the same ladder.

Used by ``parity`` and export's verification (through :func:`attach`) and by
``benchmarks/bench_int8.py``. Layering: beside :mod:`.compare`, imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .compare import tensor_stats
from .metrics import MatchStats, match_detections
from .postprocess import DecodeConfig, OutputSpec, decode_outputs

#: the +-k levels measured (a ladder: the equivalent level is one of these)
LADDER = (1, 2, 3, 4, 6, 8, 12, 16)
#: noise draws per level (the ladder's figures are their means)
DRAWS = 2
SEED = 7000
#: (key, label, higher is better): the figures an int8 artifact is compared on
FIGURES = (("recall", "recall", True), ("precision", "precision", True),
           ("mean_iou", "mean IoU", True), ("worst_sqnr_db", "worst SQNR", True))


def pixel_noise(nchw: np.ndarray, lsb: int, seed: int) -> np.ndarray:
    """``nchw`` (pre-processed, ``p / 127.5 - 1``) plus uniform integer noise of +-``lsb`` camera
    levels per pixel and channel, clipped to [-1, 1]."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-lsb, lsb + 1, size=nchw.shape).astype(np.float32) * np.float32(2 / 255)
    return np.clip(nchw + noise, -1.0, 1.0).astype(np.float32)


@dataclass
class Disturbance:
    """How far a run's outputs are from the reference's on the same images."""

    recall: float
    precision: float
    mean_iou: float | None
    worst_sqnr_db: float | None
    ref: int = 0
    test: int = 0
    matched: int = 0

    def value(self, key: str):
        return getattr(self, key)

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None or not np.isfinite(v) else round(float(v), 4)
        return {"recall": r(self.recall), "precision": r(self.precision),
                "mean_iou": r(self.mean_iou), "worst_sqnr_db": r(self.worst_sqnr_db),
                "ref": self.ref, "test": self.test, "matched": self.matched}


def disturbance_of(match: MatchStats, worst_sqnr_db: float | None) -> Disturbance:
    return Disturbance(match.matched / match.ref if match.ref else 1.0,
                       match.matched / match.test if match.test else 1.0,
                       match.mean_iou if match.matched else None, worst_sqnr_db,
                       match.ref, match.test, match.matched)


def measure(ref_raw: list, ref_dets: list, raw: list, dets: list,
            ref_specs: Sequence[OutputSpec], specs: Sequence[OutputSpec]) -> Disturbance:
    """The :class:`Disturbance` of ``raw`` / ``dets`` against the reference's."""
    tot = MatchStats()
    for a, b in zip(ref_dets, dets):
        tot = tot.add(match_detections(a, b))
    sq = [t.sqnr_db_relevant for t in tensor_stats(ref_raw, raw, ref_specs, specs)
          if t.sqnr_db_relevant is not None]
    return disturbance_of(tot, min(sq) if sq else None)


def _mean(ds: list[Disturbance]) -> Disturbance:
    def m(key):
        v = [d.value(key) for d in ds if d.value(key) is not None]
        v = [x for x in v if np.isfinite(x)] or v
        return float(np.mean(v)) if v else None
    return Disturbance(m("recall"), m("precision"), m("mean_iou"), m("worst_sqnr_db"),
                       ds[0].ref, int(round(np.mean([d.test for d in ds]))),
                       int(round(np.mean([d.matched for d in ds]))))


def noise_ladder(run: Callable[[np.ndarray], list], nchw: np.ndarray, ref_raw: list,
                 ref_dets: list, specs: Sequence[OutputSpec], anchors: np.ndarray,
                 cfg: DecodeConfig, levels: Sequence[int] = LADDER, draws: int = DRAWS,
                 seed: int = SEED, until: Callable[[dict], bool] | None = None) -> dict:
    """{k: :class:`Disturbance`} of the fp32 reference itself (``run(nchw) -> raw outputs``) under
    +-k levels of pixel noise, the mean over ``draws`` seeded draws per level; levels in
    ascending order, stopping early once ``until(ladder so far)`` is true."""
    out = {}
    for k in sorted(int(v) for v in levels):
        ds = []
        for t in range(draws):
            raw = run(pixel_noise(nchw, k, seed + 100 * k + t))
            dets = [decode_outputs(r, anchors, cfg, specs) for r in raw]
            ds.append(measure(ref_raw, ref_dets, raw, dets, specs, specs))
        out[k] = _mean(ds)
        if until is not None and until(out):
            break
    return out


def _as_disturbed(noisy: Disturbance, test: Disturbance, key: str, higher: bool) -> bool:
    """Does the noisy fp32 run disturb figure ``key`` at least as much as ``test``?"""
    a, b = noisy.value(key), test.value(key)
    if b is None:
        return True
    if a is None:
        return False
    return a <= b if higher else a >= b


def equivalent_level(test: Disturbance, ladder: dict) -> dict:
    """The equivalent camera noise of ``test`` on ``ladder`` (see the module doc):
    ``{"level": k or None (beyond the ladder), "beyond": max level when None, "by_figure":
    {key: k or None}, "limited_by": [keys whose level is the overall one]}``."""
    levels = sorted(ladder)
    by = {}
    for key, _, higher in FIGURES:
        by[key] = next((k for k in levels if _as_disturbed(ladder[k], test, key, higher)), None)
    overall = None if any(v is None for v in by.values()) else max(by.values())
    limited = [k for k, v in by.items() if v == overall]
    labels = {k: lab for k, lab, _ in FIGURES}
    return {"level": overall, "beyond": levels[-1] if levels else None, "by_figure": by,
            "limited_by": limited, "limited_by_labels": [labels[k] for k in limited],
            "ladder": {str(k): d.to_dict() for k, d in ladder.items()}}


def fmt_level(eq: dict | None) -> str:
    """'±2 levels', '> ±16 levels' (or '-' when not measured)."""
    if not eq:
        return "-"
    if eq.get("level") is None:
        return f"> ±{eq.get('beyond')} levels"
    return f"±{eq['level']} level{'s' if eq['level'] != 1 else ''}"


def attach(results: Sequence, ref_run: Callable[[np.ndarray], list], nchw: np.ndarray,
           ref_raw: list, ref_dets: list, ref_specs: Sequence[OutputSpec],
           anchors: np.ndarray, cfg: DecodeConfig, levels: Sequence[int] = LADDER,
           draws: int = DRAWS) -> dict | None:
    """Measure the fp32 reference's ladder (up to the first level that decides every int8
    artifact) and set ``noise_equivalent`` on every measured int8
    :class:`~blazeear_edge.compare.RuntimeResult` of ``results``. Returns the ladder
    ({k: Disturbance}), or None when no int8 result needs it."""
    int8 = [r for r in results if r.precision == "int8" and not r.reference and not r.error
            and r.match is not None]
    if not int8:
        return None
    tests = [disturbance_of(r.match, r.worst_sqnr_db) for r in int8]

    def decided(ladder: dict) -> bool:
        return all(equivalent_level(t, ladder)["level"] is not None for t in tests)

    ladder = noise_ladder(ref_run, nchw, ref_raw, ref_dets, ref_specs, anchors, cfg, levels,
                          draws, until=decided)
    for r, t in zip(int8, tests):
        r.noise_equivalent = equivalent_level(t, ladder)
        r.noise_equivalent["beyond"] = max(ladder)
    return ladder


__all__ = ["DRAWS", "FIGURES", "LADDER", "Disturbance", "attach",
           "disturbance_of", "equivalent_level", "fmt_level", "measure", "noise_ladder",
           "pixel_noise"]
