"""``lint``: will this ONNX / TFLite model compile for the STM32N6 NPU, and what runs where?

ST Edge AI Core (``stedgeai``) is proprietary and cannot run here; this linter applies, on the
host and in well under a second, the rules gathered in ``../shared/docs/st-edge-ai.md`` (each rule
carries its source) and estimates the hardware / hybrid / software placement, the epoch count and
the footprint of one stedgeai compile (:class:`StedgeaiOptions`: stedgeai's own I/O type options
and the epoch controller), from the evidence of 12 real STM32N6 compiles
(``../shared/docs/st-n6-compiles.md``; each placement rule names the ST file that shows it).

>>> from blazeear_edge.lint import lint_model
>>> rep = lint_model("model_int8.tflite", output_data_type="int8")  # or .onnx, a ModelProto
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
from .latency import predict as predict_latency
from .footprint import activations_peak_bytes, count_params_and_weights, st_weight_image_bytes
from .mapping import HYBRID_WEIGHT, MACC_PER_COST_UNIT, SW_WEIGHT, Mapping, estimate
from .onnx_reader import read_onnx
from .options import (StedgeaiOptions, merge, options_from_manifest, parse_stedgeai_command)
from .placement import PLACEMENT_RULES, Placement
from .report import JSON_KEYS, LintReport, format_text
from .rules import RULES, Finding, Rule, run_checks
from .tflite_reader import read_tflite

TARGETS = ("stm32n6",)

__all__ = ["lint_model", "read_model", "LintReport", "Finding", "Rule", "RULES", "Mapping",
           "Placement", "Graph", "TARGETS", "JSON_KEYS", "HYBRID_WEIGHT", "SW_WEIGHT",
           "MACC_PER_COST_UNIT", "format_text", "StedgeaiOptions", "parse_stedgeai_command",
           "options_from_manifest", "resolve_options", "PLACEMENT_RULES"]


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
            return _guard(lambda: read_onnx(path_or_model), "<in-memory ONNX model>")
        raise BlazeEarError(f"cannot lint a {type(path_or_model).__name__}: give a .onnx or "
                            ".tflite path or an onnx.ModelProto")
    p = Path(path_or_model)
    if not p.exists():
        raise BlazeEarError(f"{p}: no such file")
    if p.is_dir():
        models = sorted(f.name for f in p.glob("*_int8.*") if f.suffix in (".onnx", ".tflite"))
        if (p / "manifest.json").is_file() and models:
            raise BlazeEarError(f"{p}: is an export folder; lint one of its models (estimated "
                                f"with the manifest's stedgeai line), e.g. {p / models[0]}")
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
        return _guard(lambda: read_tflite(p), str(p))
    if suffix != ".onnx":
        try:
            return _guard(lambda: read_onnx(p), str(p))
        except BlazeEarError:
            raise BlazeEarError(f"{p}: neither a TFLite nor an ONNX model") from None
    return _guard(lambda: read_onnx(p), str(p))


def _guard(fn, label, what="not a readable model"):
    """Reading (or analysing) a corrupt file must end in one line naming it, never a traceback
    and never exit status 1 (which means "the model has errors")."""
    try:
        return fn()
    except BlazeEarError:
        raise
    except MemoryError:
        raise BlazeEarError(f"{label}: {what} (out of memory)") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a bad file
        first = str(exc).splitlines()[0] if str(exc).strip() else ""
        raise BlazeEarError(f"{label}: {what} ({type(exc).__name__}: {first[:200]}); "
                            "a damaged file? (--debug shows the traceback)") from None


def resolve_options(path_or_model, *, stedgeai_command: str | None = None,
                    input_data_type: str | None = None, output_data_type: str | None = None,
                    epoch_controller: bool | None = None, float_io: bool = False,
                    use_manifest: bool = True, st_version: str | None = None) -> StedgeaiOptions:
    """The compile to estimate: a given ``stedgeai`` command line, else the line the export's
    ``manifest.json`` beside the file gives for it, else stedgeai's defaults; explicit options
    (and ``float_io``, an alias for float32 at both ends) override."""
    base = None
    if stedgeai_command:
        base = parse_stedgeai_command(stedgeai_command)
    elif use_manifest and isinstance(path_or_model, (str, os.PathLike)):
        base = options_from_manifest(path_or_model)
    if float_io:
        input_data_type = input_data_type or "float32"
        output_data_type = output_data_type or "float32"
    return merge(base or StedgeaiOptions(), input_data_type=input_data_type,
                 output_data_type=output_data_type, epoch_controller=epoch_controller,
                 version=st_version)


def lint_model(path_or_model, target: str = "stm32n6", *, options: StedgeaiOptions | None = None,
               input_data_type: str | None = None, output_data_type: str | None = None,
               epoch_controller: bool | None = None, stedgeai_command: str | None = None,
               float_io: bool = False, assume_int8: bool = False,
               use_manifest: bool = True, st_version: str | None = None) -> LintReport:
    """Lint a model for ST Edge AI Core and estimate its mapping on the target's NPU.

    ``path_or_model``: a ``.onnx`` or ``.tflite`` path, or an in-memory ``onnx.ModelProto``.
    The compile estimated (:class:`StedgeaiOptions`): ``options`` when given, else
    :func:`resolve_options` of the other arguments: ``input_data_type`` / ``output_data_type``
    (``float32|int8|uint8``; default: the input conversion absorbed, the outputs as the file
    stores them, as stedgeai does), ``epoch_controller`` (default on, as in ST's application
    profiles), a ``stedgeai_command`` line to read them from, or the export manifest beside the
    file. ``float_io``: alias for float32 at both ends. ``st_version``: the ST Edge AI Core
    version ("2.1", ...), which only changes the weight-image estimate (footprint.py).
    ``assume_int8``: place float operators where they would run once quantised, so rewrites of a
    float model can be compared before quantising it (the findings are unchanged).

    A file that cannot be read, or that breaks the analysis, raises :class:`BlazeEarError`
    (exit status 2) naming it: a damaged model is bad input, never "the model has errors".
    """
    if target not in TARGETS:
        raise BlazeEarError(f"unknown target {target!r} (supported: {', '.join(TARGETS)})")
    opts = options or resolve_options(path_or_model, stedgeai_command=stedgeai_command,
                                      input_data_type=input_data_type,
                                      output_data_type=output_data_type,
                                      epoch_controller=epoch_controller, float_io=float_io,
                                      use_manifest=use_manifest, st_version=st_version)
    g = read_model(path_or_model)
    return _guard(lambda: _analyse(g, target, opts, assume_int8), g.path, "cannot be analysed")


def _analyse(g: Graph, target: str, opts: StedgeaiOptions, assume_int8: bool) -> LintReport:
    mapping = estimate(g, opts, assume_int8=assume_int8)
    findings = run_checks(g, mapping.ops)
    params, wbytes = count_params_and_weights(g)
    wbytes = st_weight_image_bytes(g, wbytes, opts.version)
    rep = LintReport(model=g.path, format=g.format, target=target, findings=findings,
                     mapping=mapping, macc=mapping.macc, params=params, weights_bytes=wbytes,
                     activations_peak_bytes=activations_peak_bytes(g))
    rep.latency = predict_latency(g, mapping, wbytes)
    rep.to_dict()  # a report that cannot be serialised is a damaged model, caught here
    rep.format_text(show_ops=True)
    return rep
