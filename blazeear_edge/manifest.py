"""The export manifest: the single source of truth for anchors, tensor names, quantisation
parameters and decode thresholds. The NumPy decode, the C harness header and every report read it.

It is typed (:class:`ExportManifest`, :class:`ArtifactEntry`, :class:`InputEntry`,
:class:`ModelEntry`, :class:`ExportEntry`), validated when loaded (a field of the wrong type is a
one-line error naming the file and the field) and written by :meth:`ExportManifest.to_dict`.

Layout of ``manifest.json`` (``schema`` = ``blazeear-edge/manifest/2``)::

    {
      "schema": "blazeear-edge/manifest/2",
      "name": "blazeface_front_mediapipe",
      "created": "2026-11-23T02:00:00Z",
      "model": {"kind", "description", "source", "sha256", "params", "batchnorm_folded",
                "notes"},
      "tools": {"torch": "2.13.0", "onnx": ..., ...},
      "input": {"name", "shape", "layout", "dtype", "normalization": {...}},
      "artifacts": {
        "<id>": {                      # fp32_onnx, int8_onnx, fp32_tflite, int8_tflite
          "path": "<name>_int8.tflite", "format": "onnx"|"tflite", "precision": "fp32"|"int8",
          "size_bytes", "sha256",
          "input": {"name", "shape", "layout", "dtype", "scale", "zero_point",
                    "camera_mapping"},
          "outputs": [in the artifact's output order: OutputSpec fields (name, kind,
                      anchor_start, anchor_count, dtype/scale/zero_point of the tensor the
                      runtime returns, shape, layout, anchors_per_cell) and, for every output
                      of an int8 artifact, "quantization": {"dtype", "scale", "zero_point"}:
                      the integer tensor behind this output (TFLite: the output itself;
                      ONNX QDQ: the input of the DequantizeLinear that feeds it)],
          "verification": {...}       # compare.RuntimeResult.to_dict() + "verdict"
        }, ...
      },
      "anchors": {"kind", "source", "file": "anchors.npy", "sha256", "count": 896, "columns"},
      "decode": DecodeConfig dict (score_thresh, iou_thresh, nms, score_clip, max_detections,
                max_candidates, x/y/w/h_scale),
      "calibration": {...provenance, "method": {"onnx": ..., "tflite": ...}} | null,
      "export": {"outputs", "onnx_layout", "channel_pad", "channel_pad_choice",
                 "logit_saturation", "equalization", "opset", "input_type", "formats", "int8",
                 "score_range": the score outputs' int8 range [lo, hi] in both int8 files},
      "verification": {"images", "source", "tolerances", "coverage" (face sizes seen, per
                       head: coverage.py), <artifact id>: {...}},
      "lint": {<artifact id>: summary} | null,
      "quantization": {...choices and their effect} | null,
      "stedgeai": {"generate", "generate_onnx", "note", "camera_note", ...} | null,
      "st_app": {...the ST-application choices, blazeear_edge.stapp} (only when made)
    }

Schema 1 manifests (before 2026-11-29) are read too: their output quantisation (TFLite: the
output's own ``dtype/scale/zero_point``; ONNX: a nested ``quantization``) is mapped to the one
encoding above, and ``export.score_clip_in_graph`` to ``export.logit_saturation``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BlazeEarError
from .postprocess import DecodeConfig, OutputSpec

SCHEMA = "blazeear-edge/manifest/2"
SCHEMA_V1 = "blazeear-edge/manifest/1"
MANIFEST_FILE = "manifest.json"
INTEGER_DTYPES = ("int8", "uint8")


class _Fields:
    """Typed reads from one JSON object; every error names the file and the field path."""

    def __init__(self, d: Any, where: str, path: str):
        if not isinstance(d, dict):
            raise BlazeEarError(f"{where}: {path or 'manifest'} must be an object, "
                                f"got {type(d).__name__}")
        self.d, self.where, self.path = d, where, path

    def _bad(self, key, what, v):
        name = f"{self.path}.{key}" if self.path else key
        raise BlazeEarError(f"{self.where}: field '{name}' must be {what}, got {v!r:.60}")

    def get(self, key, kind, default=None, required=False):
        if key not in self.d or self.d[key] is None:
            if required:
                self._bad(key, f"present ({kind})", None)
            return default
        v = self.d[key]
        ok = {"str": isinstance(v, str),
              "int": isinstance(v, int) and not isinstance(v, bool),
              "num": isinstance(v, (int, float)) and not isinstance(v, bool),
              "bool": isinstance(v, bool),
              "dict": isinstance(v, dict),
              "list": isinstance(v, list),
              "ints": isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                                  for x in v)}[kind]
        if not ok:
            self._bad(key, {"str": "a string", "int": "an integer", "num": "a number",
                            "bool": "true or false", "dict": "an object", "list": "a list",
                            "ints": "a list of integers"}[kind], v)
        return v

    def sub(self, key, required=False) -> "_Fields | None":
        v = self.get(key, "dict", required=required)
        return None if v is None else _Fields(v, self.where, f"{self.path}.{key}".strip("."))


def _quantization(f: _Fields | None) -> dict | None:
    if f is None:
        return None
    dtype = f.get("dtype", "str", "int8")
    if dtype not in INTEGER_DTYPES:
        f._bad("dtype", f"one of {', '.join(INTEGER_DTYPES)}", dtype)
    scale = float(f.get("scale", "num", required=True))
    if not (np.isfinite(scale) and scale > 0):
        f._bad("scale", "a positive number", scale)
    return {"dtype": dtype, "scale": scale, "zero_point": int(f.get("zero_point", "int", 0))}


@dataclass(frozen=True)
class OutputEntry:
    """One output of an artifact: the spec the decode uses and the integer tensor behind it."""

    spec: OutputSpec
    quantization: dict | None = None  #: {"dtype", "scale", "zero_point"} or None (fp32)
    tensor_name: str | None = None  #: TFLite tensor name
    index: int | None = None  #: TFLite output tensor index

    def to_dict(self) -> dict:
        d = self.spec.to_dict()
        if self.quantization is not None:
            d["quantization"] = dict(self.quantization)
        if self.tensor_name is not None:
            d["tensor_name"] = self.tensor_name
        if self.index is not None:
            d["index"] = self.index
        return d

    @classmethod
    def from_dict(cls, d, where: str, path: str, v1: bool = False) -> "OutputEntry":
        f = _Fields(d, where, path)
        kind = f.get("kind", "str", required=True)
        if kind not in ("regressors", "scores"):
            f._bad("kind", "regressors or scores", kind)
        dtype = f.get("dtype", "str", "float32")
        if dtype not in ("float32",) + INTEGER_DTYPES:
            f._bad("dtype", "float32, int8 or uint8", dtype)
        spec = OutputSpec(f.get("name", "str", required=True), kind,
                          f.get("anchor_start", "int", required=True),
                          f.get("anchor_count", "int", required=True), dtype,
                          float(f.get("scale", "num", 1.0)), f.get("zero_point", "int", 0),
                          tuple(f.get("shape", "ints", [])), f.get("layout", "str", "anchors"),
                          f.get("anchors_per_cell", "int", 0))
        if dtype in INTEGER_DTYPES and not (np.isfinite(spec.scale) and spec.scale > 0):
            f._bad("scale", "a positive number", spec.scale)
        q = _quantization(f.sub("quantization"))
        if q is None and dtype in INTEGER_DTYPES:  # schema 1 TFLite: the output itself
            q = {"dtype": dtype, "scale": spec.scale, "zero_point": spec.zero_point}
        return cls(spec, q, f.get("tensor_name", "str"), f.get("index", "int"))


@dataclass(frozen=True)
class InputEntry:
    name: str
    shape: tuple
    layout: str
    dtype: str = "float32"
    scale: float | None = None
    zero_point: int | None = None
    camera_mapping: dict | None = None

    def to_dict(self) -> dict:
        d = {"name": self.name, "shape": list(self.shape), "layout": self.layout,
             "dtype": self.dtype}
        if self.scale is not None:
            d.update(scale=self.scale, zero_point=self.zero_point)
        if self.camera_mapping is not None:
            d["camera_mapping"] = self.camera_mapping
        return d

    @classmethod
    def from_dict(cls, d, where: str, path: str) -> "InputEntry":
        f = _Fields(d, where, path)
        scale = f.get("scale", "num")
        return cls(f.get("name", "str", ""), tuple(f.get("shape", "ints", [])),
                   f.get("layout", "str", ""), f.get("dtype", "str", "float32"),
                   None if scale is None else float(scale), f.get("zero_point", "int"),
                   f.get("camera_mapping", "dict"))


@dataclass(frozen=True)
class ArtifactEntry:
    key: str
    path: str
    format: str  # onnx | tflite
    precision: str  # fp32 | int8
    size_bytes: int
    sha256: str
    input: InputEntry
    outputs: tuple  # OutputEntry, in the artifact's output order
    verification: dict = field(default_factory=dict)

    def output_specs(self) -> list[OutputSpec]:
        return [o.spec for o in self.outputs]

    def integer_specs(self) -> list[OutputSpec]:
        """The integer tensors behind the outputs (for the C harness); fp32 artifacts raise."""
        out = []
        for o in self.outputs:
            if o.quantization is None:
                raise BlazeEarError(f"artifact {self.key}: output {o.spec.name} is "
                                    f"{o.spec.dtype}, not int8/uint8")
            q = o.quantization
            out.append(OutputSpec(o.spec.name, o.spec.kind, o.spec.anchor_start,
                                  o.spec.anchor_count, q["dtype"], q["scale"], q["zero_point"],
                                  o.spec.shape, o.spec.layout, o.spec.anchors_per_cell))
        return out

    def to_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "precision": self.precision,
                "size_bytes": self.size_bytes, "sha256": self.sha256,
                "input": self.input.to_dict(), "outputs": [o.to_dict() for o in self.outputs],
                "verification": self.verification}

    @classmethod
    def from_dict(cls, key: str, d, where: str, v1: bool = False) -> "ArtifactEntry":
        p = f"artifacts.{key}"
        f = _Fields(d, where, p)
        path = f.get("path", "str", required=True)
        fmt = f.get("format", "str", "tflite" if path.endswith(".tflite") else "onnx")
        if fmt not in ("onnx", "tflite"):
            f._bad("format", "onnx or tflite", fmt)
        prec = f.get("precision", "str", "fp32")
        if prec not in ("fp32", "int8"):
            f._bad("precision", "fp32 or int8", prec)
        outs = f.get("outputs", "list", required=True)
        if not outs:
            f._bad("outputs", "a non-empty list", outs)
        return cls(key, path, fmt, prec,
                   f.get("size_bytes", "int", 0), f.get("sha256", "str", ""),
                   InputEntry.from_dict(f.get("input", "dict", {}), where, f"{p}.input"),
                   tuple(OutputEntry.from_dict(o, where, f"{p}.outputs[{i}]", v1)
                         for i, o in enumerate(outs)),
                   f.get("verification", "dict", {}))


@dataclass(frozen=True)
class ModelEntry:
    kind: str = ""
    description: str = ""
    source: str = ""
    sha256: str = ""
    params: int = 0
    batchnorm_folded: bool = False
    notes: Any = None

    @classmethod
    def from_dict(cls, d, where: str) -> "ModelEntry":
        f = _Fields(d, where, "model")
        return cls(f.get("kind", "str", ""), f.get("description", "str", ""),
                   f.get("source", "str", ""), f.get("sha256", "str", ""),
                   f.get("params", "int", 0), f.get("batchnorm_folded", "bool", False),
                   d.get("notes"))

    def to_dict(self) -> dict:
        return {k.name: getattr(self, k.name) for k in fields(self)}


@dataclass(frozen=True)
class ExportEntry:
    """How the artifacts were made (what the CLI options resolved to)."""

    outputs: str = "split"
    onnx_layout: str = "anchors"
    channel_pad: str = "concat"
    channel_pad_choice: dict | None = None
    logit_saturation: float | None = None  #: in-graph logit clip [-s, s] (None: none)
    equalization: dict | None = None
    opset: int = 17
    input_type: str = "float32"
    formats: tuple = ("onnx", "tflite")
    int8: bool = False
    #: int8 range (lo, hi) of the score outputs (logits) in both int8 artifacts (None: no int8
    #: artifact, or calibrated; manifests before it existed used +-logit_saturation)
    score_range: tuple | None = None

    @classmethod
    def from_dict(cls, d, where: str) -> "ExportEntry":
        f = _Fields(d, where, "export")
        sat = f.get("logit_saturation", "num", d.get("score_clip_in_graph"))
        if sat is not None and (isinstance(sat, bool) or not isinstance(sat, (int, float))):
            f._bad("logit_saturation", "a number", sat)
        return cls(f.get("outputs", "str", "split"), f.get("onnx_layout", "str", "anchors"),
                   f.get("channel_pad", "str", "concat"), f.get("channel_pad_choice", "dict"),
                   None if sat is None else float(sat), f.get("equalization", "dict"),
                   f.get("opset", "int", 17), f.get("input_type", "str", "float32"),
                   tuple(f.get("formats", "list", ["onnx", "tflite"])),
                   f.get("int8", "bool", False), _score_range(f))

    def to_dict(self) -> dict:
        d = {k.name: getattr(self, k.name) for k in fields(self)}
        d["formats"] = list(self.formats)
        d["score_range"] = list(self.score_range) if self.score_range else None
        return d


def _score_range(f) -> tuple | None:
    r = f.get("score_range", "list")
    if r is None:
        return None
    if (len(r) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in r)
            or not r[0] < 0 < r[1]):
        f._bad("score_range", "[lo, hi] with lo < 0 < hi", r)
    return (float(r[0]), float(r[1]))


@dataclass
class ExportManifest:
    """A parsed export manifest plus the folder it lives in (``root``, not serialised)."""

    name: str
    model: ModelEntry
    artifacts: dict  # key -> ArtifactEntry, in the order written
    anchors_info: dict
    decode: DecodeConfig
    export: ExportEntry
    created: str = ""
    tools: dict = field(default_factory=dict)
    input: dict = field(default_factory=dict)
    calibration: dict | None = None
    verification: dict = field(default_factory=dict)
    lint: dict | None = None
    quantization: dict | None = None
    stedgeai: dict | None = None
    st_app: dict | None = None  #: ST-application choices (blazeear_edge.stapp), if any
    root: Path = Path(".")

    # -- access -------------------------------------------------------------------------------
    def artifact(self, key: str) -> ArtifactEntry:
        if key not in self.artifacts:
            raise BlazeEarError(f"{self.root / MANIFEST_FILE}: no artifact '{key}' "
                                f"(has: {', '.join(self.artifacts) or 'none'})")
        return self.artifacts[key]

    def artifact_path(self, key: str) -> Path:
        return self.root / self.artifact(key).path

    def output_specs(self, key: str) -> list[OutputSpec]:
        return self.artifact(key).output_specs()

    def decode_config(self, **overrides) -> DecodeConfig:
        d = self.decode.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        return DecodeConfig.from_dict(d)

    def anchors(self) -> np.ndarray:
        path = self.root / str(self.anchors_info.get("file") or "anchors.npy")
        if not path.is_file():
            raise BlazeEarError(f"{path}: anchor table named by the manifest is missing")
        try:
            a = np.load(path, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as exc:
            raise BlazeEarError(f"{path}: not a readable anchor table ({exc})") from None
        if a.shape != (896, 4):
            raise BlazeEarError(f"{path}: anchor table must be (896, 4), got {a.shape}")
        return a

    @property
    def data(self) -> dict:
        """The manifest as a plain dict (what :meth:`to_dict` writes)."""
        return self.to_dict()

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA, "name": self.name, "created": self.created,
            "model": self.model.to_dict(), "tools": self.tools, "input": self.input,
            "artifacts": {k: a.to_dict() for k, a in self.artifacts.items()},
            "anchors": self.anchors_info, "decode": self.decode.to_dict(),
            "calibration": self.calibration, "export": self.export.to_dict(),
            "verification": self.verification, "lint": self.lint,
            "quantization": self.quantization, "stedgeai": self.stedgeai,
            **({"st_app": self.st_app} if self.st_app is not None else {})}

    @classmethod
    def from_dict(cls, d, where: str = MANIFEST_FILE, root: Path | None = None
                  ) -> "ExportManifest":
        f = _Fields(d, where, "")
        schema = d.get("schema")
        if schema not in (SCHEMA, SCHEMA_V1):
            raise BlazeEarError(f"{where}: not a blazeear-edge manifest (schema {SCHEMA} "
                                f"expected, got {schema!r:.60})")
        v1 = schema == SCHEMA_V1
        arts = f.get("artifacts", "dict", {})
        try:
            decode = DecodeConfig.from_dict(f.get("decode", "dict", {}))
        except (TypeError, ValueError, BlazeEarError) as exc:
            raise BlazeEarError(f"{where}: field 'decode': {exc}") from None
        return cls(
            name=f.get("name", "str", "model"),
            model=ModelEntry.from_dict(f.get("model", "dict", {}), where),
            artifacts={k: ArtifactEntry.from_dict(k, a, where, v1) for k, a in arts.items()},
            anchors_info=f.get("anchors", "dict", {}), decode=decode,
            export=ExportEntry.from_dict(f.get("export", "dict", {}), where),
            created=f.get("created", "str", ""), tools=f.get("tools", "dict", {}),
            input=f.get("input", "dict", {}), calibration=f.get("calibration", "dict"),
            verification=f.get("verification", "dict", {}), lint=f.get("lint", "dict"),
            quantization=f.get("quantization", "dict"), stedgeai=f.get("stedgeai", "dict"),
            st_app=f.get("st_app", "dict"), root=root or Path("."))


#: the name readers use
Manifest = ExportManifest


def load_manifest(export_dir: str | os.PathLike) -> ExportManifest:
    """Read and validate ``EXPORT_DIR/manifest.json`` (or a path to the json itself)."""
    p = Path(export_dir)
    if p.is_dir():
        p = p / MANIFEST_FILE
    if not p.is_file():
        raise BlazeEarError(f"{p}: no export manifest here (run 'blazeear-edge export' first)")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise BlazeEarError(f"{p}: not a readable manifest ({exc})") from None
    if not isinstance(data, dict):
        raise BlazeEarError(f"{p}: not a blazeear-edge manifest (schema {SCHEMA} expected)")
    return ExportManifest.from_dict(data, str(p), p.parent)


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
