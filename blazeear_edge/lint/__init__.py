"""``lint``: will this ONNX / TFLite model compile for the STM32N6 NPU, and what runs where?

ST Edge AI Core (``stedgeai``) is proprietary and cannot run here; this linter applies, on the
host and in about a second, the rules gathered in ``../shared/docs/st-edge-ai.md`` (each rule
carries its source) and estimates the hardware / hybrid / software placement and the epoch count,
calibrated on ST's own BlazeFace-128 compile (45 epochs = 23 hardware + 22 hybrid).

>>> from blazeear_edge.lint import lint_model
>>> rep = lint_model("model_int8.tflite")            # or .onnx, or an onnx.ModelProto
>>> rep.summary, rep.mapping.epochs, rep.mapping.cost
>>> rep.to_dict()                                     # the documented JSON schema

Both formats are read into one neutral graph (:mod:`.graph`) and the same rules (:mod:`.rules`)
and mapping (:mod:`.mapping`) run on it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BlazeEarError
from .graph import Graph
from .mapping import (HYBRID_WEIGHT, MACC_PER_COST_UNIT, SW_WEIGHT, Mapping, Placement,
                      activations_peak_bytes, count_params_and_weights, estimate)
from .report import JSON_KEYS, LintReport, format_text
from .rules import RULES, Finding, Rule, run_checks

TARGETS = ("stm32n6",)

__all__ = ["lint_model", "read_model", "LintReport", "Finding", "Rule", "RULES", "Mapping",
           "Placement", "Graph", "TARGETS", "JSON_KEYS", "HYBRID_WEIGHT", "SW_WEIGHT",
           "MACC_PER_COST_UNIT", "format_text"]


def read_model(path_or_model) -> Graph:
    """Read a ``.onnx`` / ``.tflite`` file or an ``onnx.ModelProto`` into the neutral graph.

    Raises :class:`BlazeEarError` (exit status 2) naming the file when it is missing, a directory,
    empty, or not readable as either format.
    """
    if not isinstance(path_or_model, (str, os.PathLike)):
        try:
            import onnx
        except ImportError:  # pragma: no cover - onnx is a dependency
            onnx = None
        if onnx is not None and isinstance(path_or_model, onnx.ModelProto):
            from .onnx_reader import read_onnx

            return _guard(lambda: read_onnx(path_or_model), "<in-memory ONNX model>")
        raise BlazeEarError(f"cannot lint a {type(path_or_model).__name__}: give a .onnx or "
                            ".tflite path or an onnx.ModelProto")
    p = Path(path_or_model)
    if not p.exists():
        raise BlazeEarError(f"{p}: no such file")
    if p.is_dir():
        raise BlazeEarError(f"{p}: is a directory, not a model file (.onnx or .tflite)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise BlazeEarError(f"{p}: cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise BlazeEarError(f"{p}: empty file, not a model")
    suffix = p.suffix.lower()
    if head[4:8] == b"TFL3" or suffix == ".tflite":
        from .tflite_reader import read_tflite

        return _guard(lambda: read_tflite(p), str(p))
    from .onnx_reader import read_onnx

    if suffix != ".onnx":
        try:
            return _guard(lambda: read_onnx(p), str(p))
        except BlazeEarError:
            raise BlazeEarError(f"{p}: neither a TFLite nor an ONNX model") from None
    return _guard(lambda: read_onnx(p), str(p))


def _guard(fn, label):
    """Reading a corrupt file must end in one line naming it, never a traceback."""
    try:
        return fn()
    except BlazeEarError:
        raise
    except MemoryError:
        raise BlazeEarError(f"{label}: not a readable model (out of memory while parsing)") \
            from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        raise BlazeEarError(f"{label}: not a readable model ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def lint_model(path_or_model, target: str = "stm32n6", *, float_io: bool = False,
               assume_int8: bool = False) -> LintReport:
    """Lint a model for ST Edge AI Core and estimate its mapping on the target's NPU.

    ``path_or_model``: a ``.onnx`` or ``.tflite`` path, or an in-memory ``onnx.ModelProto``.
    ``float_io``: estimate as if stedgeai were run with float I/O types, so the model's own
    input QuantizeLinear / output DequantizeLinear count as software epochs (default: integer I/O
    types, as ST's own BlazeFace compile and this project's ``stedgeai_command``).
    ``assume_int8``: place float operators where they would run once quantised, so rewrites of a
    float model can be compared before quantising it (the findings are unchanged).
    """
    if target not in TARGETS:
        raise BlazeEarError(f"unknown target {target!r} (supported: {', '.join(TARGETS)})")
    g = read_model(path_or_model)
    mapping = estimate(g, float_io=float_io, assume_int8=assume_int8)
    findings = run_checks(g, mapping.ops)
    params, wbytes = count_params_and_weights(g)
    return LintReport(model=g.path, format=g.format, target=target, findings=findings,
                      mapping=mapping, macc=mapping.macc, params=params, weights_bytes=wbytes,
                      activations_peak_bytes=activations_peak_bytes(g))
