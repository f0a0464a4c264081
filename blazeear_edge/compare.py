"""The one compare engine: does a runtime's raw output say what the fp32 reference says?

Every verdict the tool prints about an artifact comes from here: export's verification, ``parity``,
``evaluate``'s parity columns and ``bench``. One set of documented thresholds
(:data:`FP32_DEFAULT`, :data:`INT8_DEFAULT`, overridable with a JSON file), one function that
measures (:func:`compare_runtime`), one that judges (:func:`judge`):

* raw outputs, per output tensor (:func:`tensor_stats`): max and mean absolute error and SQNR over
  all anchors, and max error and SQNR over the *relevant* anchors (reference score >=
  :data:`~blazeear_edge.metrics.RELEVANT_SCORE`: the anchors a decode can keep; background anchors
  reach logits in the thousands that int8 saturates without changing any detection); plus the
  scaled max error of fp32 artifacts (:func:`scaled_error`: float32 summation order moves the 5th
  significant digit of outputs that reach thousands);
* detections (greedy one-to-one matching at IoU >= 0.5): match rate, mean IoU, max score delta, max
  keypoint error in pixels of the 128 input, and missing / extra detections counted among the
  *confident* ones (score >= decode threshold + ``score_margin``).

A runtime FAILs when a limit of its precision's :class:`Tolerance` is exceeded; it gets a warning
(status ``ok`` with warnings) when an int8 output's relevant SQNR is under ``warn_sqnr_db`` but above
the failure limit. The failure text names the runtime and the tensor (or "detections").

Two differences are never hidden behind an ``ok`` (they are *alerts*: warnings that the one-line
summary, the export summary, the manifest, ``parity`` and ``bench`` all show):

* a large change AT the deployed threshold: the pass/fail rule counts missing / extra detections
  only above threshold + ``score_margin``, so int8 could find 14 faces where fp32 finds 2 and
  still pass. Rule: missing or extra detections counted at the decode threshold itself (no
  margin) more than ``max(warn_changed_count, warn_changed_rate x reference detections)``
  (default ``max(2, 10%)``) is an alert (:func:`threshold_alert`);
* a candidate cap (``decode.max_candidates``, the board's) that changes the runtime's output:
  the capped decode is compared with the uncapped decode of the same outputs
  (:mod:`blazeear_edge.capreport`); any frame where they differ is an alert, a frame where the
  cap bound without changing the output is a warning.

Layering: this module sits beside :mod:`.metrics` and :mod:`.postprocess` and imports nothing
above them; export, parity and evaluate use it, never each other.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import BlazeEarError
from .metrics import (RELEVANT_SCORE, MatchStats, by_box_size, match_detections, relevant_masks,
                      sqnr_db)
from .capreport import cap_stats
from .postprocess import DecodeConfig, Detections, OutputSpec, decode_outputs, dequantize

#: fp32 scaled max error: ``max|test - ref| / max(1, max|ref| / FP32_REF_MAGNITUDE)``; outputs
#: reach about 170 on faces and thousands on background anchors of odd images.
FP32_REF_MAGNITUDE = 50.0


# ---------------------------------------------------------------------------------------------
# tolerances
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """Limits for the runtimes of one precision; a runtime fails when any is exceeded."""

    min_sqnr_db: float  #: per output tensor, over the relevant anchors
    #: missing and extra detections are counted only when they score at least the decode
    #: threshold + this margin (in the reference for missing, in the runtime for extra): a
    #: detection that int8 moves across the threshold by a few hundredths is not a disagreement
    score_margin: float
    max_missing_rate: float  #: confident reference detections left unmatched, per reference det.
    max_extra_rate: float  #: confident runtime detections left unmatched, per reference det.
    min_mean_iou: float  #: mean IoU of the matched pairs
    max_score_delta: float  #: max |score difference| of a matched pair
    max_keypoint_err_px: float  #: max keypoint error of a matched pair, pixels of the 128 input
    #: max scaled error over all anchors (see :func:`scaled_error`); inf = not checked
    max_scaled_err: float = math.inf
    #: an output whose relevant SQNR is under this (but not under ``min_sqnr_db``) gets a warning
    warn_sqnr_db: float = 0.0
    #: alert (a warning every summary shows) when missing or extra detections counted AT the
    #: decode threshold (no margin) exceed max(warn_changed_count, warn_changed_rate x ref)
    warn_changed_count: float = 2.0
    warn_changed_rate: float = 0.1


#: fp32 artifacts must reproduce PyTorch up to float32 summation order: every detection.
FP32_DEFAULT = Tolerance(min_sqnr_db=60.0, score_margin=0.0, max_missing_rate=0.0,
                         max_extra_rate=0.0, min_mean_iou=0.999, max_score_delta=1e-3,
                         max_keypoint_err_px=0.05, max_scaled_err=1e-3, warn_sqnr_db=60.0)
#: int8 artifacts: int8 is not float; these bounds pass the default export on the built-in
#: hold-out and on ear210 with a margin, and catch a wrong scale, zero point, output order or
#: damaged weights (docs/parity.md gives the figures they were set against).
INT8_DEFAULT = Tolerance(min_sqnr_db=10.0, score_margin=0.1, max_missing_rate=0.05,
                         max_extra_rate=0.1, min_mean_iou=0.8, max_score_delta=0.25,
                         max_keypoint_err_px=24.0, warn_sqnr_db=30.0)


@dataclass(frozen=True)
class Tolerances:
    fp32: Tolerance = FP32_DEFAULT
    int8: Tolerance = INT8_DEFAULT

    def for_precision(self, precision: str) -> Tolerance:
        if precision not in ("fp32", "int8"):
            raise ValueError(f"precision must be fp32 or int8, got {precision!r}")
        return self.int8 if precision == "int8" else self.fp32

    def to_dict(self) -> dict:
        return {"fp32": _tol_dict(self.fp32), "int8": _tol_dict(self.int8)}

    @classmethod
    def from_dict(cls, d: dict, where: str = "tolerances") -> "Tolerances":
        """``{"fp32": {...}, "int8": {...}}``; keys left out keep their defaults."""
        if not isinstance(d, dict):
            raise BlazeEarError(f"{where}: expected a JSON object with 'fp32' and/or 'int8'")
        bad = sorted(set(d) - {"fp32", "int8"})
        if bad:
            raise BlazeEarError(f"{where}: unknown section(s) {', '.join(bad)} "
                                f"(expected 'fp32' and/or 'int8')")
        names = {f.name for f in fields(Tolerance)}
        out = {}
        for prec in ("fp32", "int8"):
            sec = d.get(prec, {})
            if not isinstance(sec, dict):
                raise BlazeEarError(f"{where}: '{prec}' must be an object")
            unknown = sorted(set(sec) - names)
            if unknown:
                raise BlazeEarError(f"{where}: unknown key(s) {prec}.{', '.join(unknown)} "
                                    f"(known: {', '.join(sorted(names))})")
            for k, v in sec.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise BlazeEarError(f"{where}: {prec}.{k} must be a number, got {v!r}")
            out[prec] = replace(getattr(cls(), prec), **{k: float(v) for k, v in sec.items()})
        return cls(**out)


def _tol_dict(t: Tolerance) -> dict:
    return {k: (None if v == math.inf else v) for k, v in asdict(t).items()}


def load_tolerances(path: str | os.PathLike) -> Tolerances:
    p = Path(path)
    if not p.is_file():
        raise BlazeEarError(f"tolerances file not found: {p}")
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise BlazeEarError(f"{p}: not readable JSON ({exc})") from None
    return Tolerances.from_dict(d, str(p))


# ---------------------------------------------------------------------------------------------
# raw outputs
# ---------------------------------------------------------------------------------------------
@dataclass
class TensorStats:
    name: str
    max_abs_err: float  # all anchors
    mean_abs_err: float  # all anchors
    sqnr_db: float  # all anchors
    max_abs_err_relevant: float | None  # relevant anchors (None: no relevant anchor)
    sqnr_db_relevant: float | None

    def to_dict(self) -> dict:
        return {k: num(v) for k, v in asdict(self).items()}


def tensor_stats(ref: list[dict], test: list[dict], ref_specs: Sequence[OutputSpec],
                 test_specs: Sequence[OutputSpec]) -> list[TensorStats]:
    """Per output tensor (in ``ref_specs`` order) errors of ``test`` (dequantised with
    ``test_specs``, matched by name) against ``ref`` (float)."""
    masks = relevant_masks(ref, ref_specs)
    by_name = {s.name: s for s in test_specs}
    missing = [s.name for s in ref_specs if s.name not in by_name]
    if missing:
        raise ValueError(f"no output(s) {', '.join(missing)}")
    out = []
    for s in (by_name[r.name] for r in ref_specs):
        ra, ta, rr, tr = [], [], [], []
        for r, t, m in zip(ref, test, masks):
            rv = np.asarray(r[s.name], np.float32).reshape(s.anchor_count, -1)
            tv = dequantize(t[s.name], s.scale, s.zero_point).reshape(s.anchor_count, -1)
            ra.append(rv.reshape(-1))
            ta.append(tv.reshape(-1))
            sel = m[s.anchor_start:s.anchor_start + s.anchor_count]
            rr.append(rv[sel].reshape(-1))
            tr.append(tv[sel].reshape(-1))
        a, b = np.concatenate(ra).astype(np.float64), np.concatenate(ta).astype(np.float64)
        err = np.abs(a - b)
        ar, br = np.concatenate(rr).astype(np.float64), np.concatenate(tr).astype(np.float64)
        out.append(TensorStats(s.name, float(err.max()), float(err.mean()), sqnr_db(a, b),
                               float(np.abs(ar - br).max()) if ar.size else None,
                               sqnr_db(ar, br) if ar.size else None))
    return out


def scaled_error(ref: list[dict], test: list[dict], specs: Sequence[OutputSpec]) -> float:
    """max over tensors and images of ``max|test - ref| / max(1, max|ref| / 50)``: absolute
    error for outputs up to 50, relative to the peak (2e-5 at tolerance 1e-3) above."""
    worst = 0.0
    by_name = {s.name: s for s in specs}
    for x, y in zip(ref, test):
        for n, r in x.items():
            s = by_name[n]
            r = np.asarray(r, np.float64).reshape(-1)
            t = dequantize(y[n], s.scale, s.zero_point).astype(np.float64).reshape(-1)
            e = float(np.abs(r - t).max())
            worst = max(worst, e / max(1.0, float(np.abs(r).max()) / FP32_REF_MAGNITUDE))
    return worst


# ---------------------------------------------------------------------------------------------
# detections
# ---------------------------------------------------------------------------------------------
def above(d: Detections, score: float) -> Detections:
    """The detections scoring at least ``score``."""
    k = d.scores >= np.float32(score)
    return d if k.all() else Detections(d.boxes[k], d.keypoints[k], d.scores[k])


def confident_counts(ref: Sequence[Detections], test: Sequence[Detections],
                     score: float) -> dict:
    """Reference detections, missing and extra ones, counting only those scoring >= ``score``
    (in the reference for missing, in the runtime for extra)."""
    return {"score": float(score),
            "ref": sum(len(above(a, score)) for a in ref),
            "missing": sum(match_detections(above(a, score), b).missing
                           for a, b in zip(ref, test)),
            "extra": sum(match_detections(a, above(b, score)).extra
                         for a, b in zip(ref, test))}


# ---------------------------------------------------------------------------------------------
# one runtime against the reference
# ---------------------------------------------------------------------------------------------
@dataclass
class RuntimeResult:
    key: str
    label: str
    precision: str
    fmt: str
    path: str = ""
    reference: bool = False
    reference_label: str = ""
    tensors: list = field(default_factory=list)  # TensorStats
    scaled_err: float | None = None
    match: MatchStats | None = None
    confident: dict = field(default_factory=dict)  # score, ref, missing, extra (see Tolerance)
    detections: int = 0
    images: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # alerts included
    #: the warnings no summary may hide: a large change at the deployed threshold, a candidate
    #: cap that changes the output (see the module doc)
    alerts: list = field(default_factory=list)
    #: detections counted at the decode threshold itself: score, ref, test, missing, extra,
    #: limit (the alert's), alert (bool)
    at_threshold: dict = field(default_factory=dict)
    cap: dict = field(default_factory=dict)  # CapStats.to_dict() of this runtime's decode
    error: str = ""
    per_image: list = field(default_factory=list)  # MatchStats per image (not serialised)
    #: recall and mean IoU per reference box width (:func:`~blazeear_edge.metrics.by_box_size`)
    by_size: list = field(default_factory=list)
    #: the equivalent camera noise (:func:`blazeear_edge.noise_floor.equivalent_level`)
    noise_equivalent: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.error:
            return "ERROR"
        if self.reference:
            return "reference"
        return "FAIL" if self.failures else "ok"

    @property
    def worst_sqnr_db(self) -> float | None:
        v = [t.sqnr_db_relevant for t in self.tensors if t.sqnr_db_relevant is not None]
        return min(v) if v else None

    def to_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "precision": self.precision,
                "format": self.fmt, "path": self.path, "reference": self.reference,
                "reference_label": self.reference_label or None,
                "status": self.status, "detections": self.detections, "images": self.images,
                "seconds": round(self.seconds, 3),
                "tensors": [t.to_dict() for t in self.tensors],
                "scaled_err": num(self.scaled_err),
                "match": None if self.match is None else
                {k: num(v) for k, v in self.match.to_dict().items()},
                "confident": {k: num(v) for k, v in self.confident.items()} or None,
                "by_size": [{k: num(v) for k, v in b.items()} for b in self.by_size],
                "noise_equivalent": self.noise_equivalent or None,
                "at_threshold": {k: num(v) for k, v in self.at_threshold.items()} or None,
                "candidate_cap": dict(self.cap) or None,
                "failures": list(self.failures), "warnings": list(self.warnings),
                "alerts": list(self.alerts), "error": self.error or None}

    def record(self) -> dict:
        """The verification record an export writes into its manifest for this artifact."""
        d = {"reference": self.reference_label, "images": self.images, "verdict": self.status,
             "failures": list(self.failures), "warnings": list(self.warnings),
             "relevant_score": RELEVANT_SCORE,
             "sqnr_db": {t.name: _r2(t.sqnr_db_relevant) for t in self.tensors},
             "sqnr_db_all_anchors": {t.name: _r2(t.sqnr_db) for t in self.tensors},
             "max_abs_err": {t.name: t.max_abs_err for t in self.tensors}}
        if self.scaled_err is not None:
            d["max_scaled_err"] = self.scaled_err
        if self.match is not None:
            det = {k: num(v) for k, v in self.match.to_dict().items()}
            det["images"] = self.images
            det["confident"] = {k: num(v) for k, v in self.confident.items()}
            if self.at_threshold:
                det["at_threshold"] = {k: num(v) for k, v in self.at_threshold.items()}
            d["detections"] = det
            d["detections_by_box_width"] = [{k: num(v) for k, v in b.items()}
                                            for b in self.by_size]
        if self.noise_equivalent:
            ne = self.noise_equivalent
            keep = ("level", "beyond", "by_figure", "limited_by", "limited_by_labels")
            d["noise_equivalent"] = {k: ne[k] for k in keep if k in ne}
        if self.cap:
            d["candidate_cap"] = dict(self.cap)
        if self.alerts:
            d["alerts"] = list(self.alerts)
        if self.error:
            d["error"] = self.error
        return d

    def summary(self) -> str:
        """One line: the figures a user reads first."""
        if self.error:
            return f"ERROR: {self.error}"
        parts = []
        if self.precision == "fp32" and self.scaled_err is not None:
            worst = max((t.max_abs_err for t in self.tensors), default=0.0)
            parts.append(f"max err {worst:.1e} abs, {self.scaled_err:.1e} scaled")
        else:
            w = self.worst_sqnr_db
            if w is not None:
                parts.append(f"SQNR >= {fmt_db(w)} dB (relevant anchors)")
        m = self.match
        if m is not None:
            iou = f", IoU {m.mean_iou:.3f}" if m.matched else ""
            parts.append(f"{m.matched}/{m.ref} detections matched{iou}, {m.extra} extra")
        a = self.at_threshold
        if a.get("alert"):
            parts.append(f"at the deployed threshold {a['score']:.2f}: {a['test']} detections "
                         f"vs {a['ref']} ({a['extra']} extra, {a['missing']} missing)")
        if self.cap.get("frames_changed"):
            parts.append(f"candidate cap K={self.cap['max_candidates']} changed "
                         f"{self.cap['frames_changed']} frame(s)")
        ref = f" vs {self.reference_label}" if self.reference_label else ""
        if self.noise_equivalent:
            ref += f"; {noise_phrase(self.noise_equivalent)}"
        head = self.status + (", WARNING" if self.alerts and not self.error else "")
        return f"{head}: " + ", ".join(parts) + ref


def compare_runtime(res: RuntimeResult, ref_raw: list[dict], ref_specs: Sequence[OutputSpec],
                    raw: list[dict], specs: Sequence[OutputSpec], anchors: np.ndarray,
                    cfg: DecodeConfig, tol: Tolerance,
                    ref_dets: list | None = None, dets: list | None = None,
                    names: Sequence | None = None) -> RuntimeResult:
    """Measure ``raw`` (a runtime's outputs, dequantised with ``specs``) against ``ref_raw`` and
    judge it with ``tol``; fills and returns ``res``. Decoded detections may be passed in when
    the caller already has them; ``names`` name the frames in the candidate-cap figures."""
    if ref_dets is None:
        ref_dets = [decode_outputs(r, anchors, cfg, ref_specs) for r in ref_raw]
    dets, cap = cap_stats(raw, anchors, cfg, specs, dets, names)
    if cfg.max_candidates:
        res.cap = cap.to_dict()
    res.images = len(raw)
    res.detections = sum(len(x) for x in dets)
    try:
        res.tensors = tensor_stats(ref_raw, raw, ref_specs, specs)
    except (KeyError, ValueError) as exc:
        res.error = f"outputs do not match the reference's ({exc})"
        return res
    if tol.max_scaled_err != math.inf:
        res.scaled_err = scaled_error(ref_raw, raw, specs)
    res.per_image = [match_detections(a, b) for a, b in zip(ref_dets, dets)]
    total = MatchStats()
    for m in res.per_image:
        total = total.add(m)
    res.match = total
    res.by_size = by_box_size(ref_dets, dets)
    res.confident = confident_counts(ref_dets, dets, float(cfg.score_thresh) + tol.score_margin)
    res.failures, res.warnings = judge(res, tol)
    res.at_threshold, alert = threshold_alert(res, float(cfg.score_thresh), tol)
    res.alerts = [alert] if alert else []
    if cap.bound:
        msg = f"{res.label} ({res.key}): {cap.sentence()}"
        if cap.changed:
            res.alerts.append(msg + " (the board's decode differs from the model's there)")
        else:
            res.warnings.append(msg)
    res.warnings += res.alerts
    return res


def threshold_alert(res: RuntimeResult, score: float, tol: Tolerance) -> tuple[dict, str]:
    """Detections counted AT the decode threshold (no margin) and the alert when missing or
    extra ones exceed ``max(warn_changed_count, warn_changed_rate x reference detections)``.

    The decode keeps only detections scoring >= the threshold, so the counts are the matching's
    own (every decoded detection is at or above it)."""
    m = res.match
    if m is None:
        return {}, ""
    limit = max(tol.warn_changed_count, tol.warn_changed_rate * m.ref)
    alert = m.missing > limit or m.extra > limit
    d = {"score": score, "ref": m.ref, "test": m.test, "missing": m.missing, "extra": m.extra,
         "limit": limit, "alert": bool(alert)}
    if not alert:
        return d, ""
    margin = (f"; the pass/fail limits count only detections scoring >= "
              f"{score + tol.score_margin:.2f}" if tol.score_margin else "")
    return d, (f"{res.label} ({res.key}): at the deployed threshold {score:.2f} it finds "
               f"{m.test} detection(s) where the reference finds {m.ref}: {m.extra} extra, "
               f"{m.missing} missing (more than max({tol.warn_changed_count:g}, "
               f"{tol.warn_changed_rate:g} x {m.ref}) = {limit:g}){margin}")


def judge(res: RuntimeResult, tol: Tolerance) -> tuple[list[str], list[str]]:
    """(failures, warnings) of a measured runtime against ``tol``."""
    who = f"{res.label} ({res.key})"
    fails, warns = [], []
    for t in res.tensors:
        v = t.sqnr_db_relevant
        if v is not None and not v >= tol.min_sqnr_db:
            fails.append(f"{who}: output {t.name}: SQNR {fmt_db(v)} dB on relevant anchors < "
                         f"{tol.min_sqnr_db:g} dB (max |err| {t.max_abs_err_relevant:.3g})")
        elif v is not None and v < tol.warn_sqnr_db:
            warns.append(f"{who}: output {t.name}: SQNR {fmt_db(v)} dB on relevant anchors "
                         f"(fp32 score >= {RELEVANT_SCORE}) under {tol.warn_sqnr_db:g} dB")
    if res.scaled_err is not None and not res.scaled_err <= tol.max_scaled_err:
        worst = max((t.max_abs_err for t in res.tensors), default=float("nan"))
        fails.append(f"{who}: outputs differ from the reference by {worst:.2e} (scaled "
                     f"{res.scaled_err:.2e} > {tol.max_scaled_err:g} at magnitude "
                     f"{FP32_REF_MAGNITUDE:g})")
    m = res.match
    if m is None:
        return fails, warns
    c = res.confident
    at = f"score >= {c['score']:.2f}"

    def rate(n):
        return n / m.ref if m.ref else (0.0 if not n else float("inf"))

    if rate(c["missing"]) > tol.max_missing_rate:
        fails.append(f"{who}: detections: {c['missing']} missing ({at}) for {m.ref} reference "
                     f"({rate(c['missing']):.3f} > {tol.max_missing_rate:g} per reference "
                     f"detection)")
    if rate(c["extra"]) > tol.max_extra_rate:
        fails.append(f"{who}: detections: {c['extra']} extra ({at}) for {m.ref} reference "
                     f"({rate(c['extra']):.3f} > {tol.max_extra_rate:g} per reference detection)")
    if m.matched and m.mean_iou < tol.min_mean_iou:
        fails.append(f"{who}: detections: mean IoU {m.mean_iou:.4f} < {tol.min_mean_iou:g}")
    if m.max_score_delta > tol.max_score_delta:
        fails.append(f"{who}: detections: max |score delta| {m.max_score_delta:.3g} > "
                     f"{tol.max_score_delta:g}")
    if m.max_keypoint_err_px > tol.max_keypoint_err_px:
        fails.append(f"{who}: detections: max keypoint error {m.max_keypoint_err_px:.3g} px > "
                     f"{tol.max_keypoint_err_px:g} px")
    return fails, warns


def noise_phrase(eq: dict | None) -> str:
    """A verdict's phrase for an equivalent camera noise (:mod:`blazeear_edge.noise_floor`):
    'as fp32 under ±2 levels of camera noise (set by mean IoU)'."""
    if not eq:
        return ""
    by = ", ".join(eq.get("limited_by_labels") or eq.get("limited_by") or [])
    if eq.get("level") is None:
        return (f"disturbs detections more than fp32 under ±{eq.get('beyond')} levels of camera "
                f"noise (by {by})")
    n = eq["level"]
    return f"as fp32 under ±{n} level{'s' if n != 1 else ''} of camera noise (set by {by})"


@dataclass
class CheckResult:
    """A check beyond one runtime (C decode, device log, manifest); status is passed, FAILED,
    not available (an external tool is missing) or not run."""

    name: str
    status: str
    detail: str = ""
    failures: list = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "failures": list(self.failures), **({"data": self.data} if self.data else {})}


# ---------------------------------------------------------------------------------------------
# number formatting shared by the reports
# ---------------------------------------------------------------------------------------------
def num(v):
    """JSON-safe number: NaN -> None, inf -> "inf", floats rounded to 6 decimals."""
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if np.isnan(v):
            return None
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
        return round(v, 6)
    return v


def _r2(v):
    return None if v is None else (num(v) if not np.isfinite(v) else round(float(v), 2))


def fmt_db(v) -> str:
    if v is None:
        return "-"
    if v == float("inf"):
        return "inf"
    return f"{v:.1f}"


__all__ = ["FP32_DEFAULT", "FP32_REF_MAGNITUDE", "INT8_DEFAULT", "RELEVANT_SCORE", "CheckResult",
           "RuntimeResult", "TensorStats", "Tolerance", "Tolerances", "above", "compare_runtime",
           "confident_counts", "fmt_db", "judge", "load_tolerances", "noise_phrase", "num",
           "scaled_error", "tensor_stats", "threshold_alert"]
