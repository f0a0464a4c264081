"""The export manifest: the single source of truth for anchors, tensor names, quantisation
parameters and decode thresholds. The NumPy decode, the C harness header and every report read it.

Layout of ``manifest.json`` (``schema`` = ``blazeear-edge/manifest/1``)::

    {
      "schema": "blazeear-edge/manifest/1",
      "name": "blazeface_front_mediapipe",
      "created": "2026-11-23T02:00:00Z",
      "model": {"kind", "description", "source", "sha256", "params", "batchnorm_folded"},
      "tools": {"torch": "2.13.0", "onnx": ..., ...},
      "input": {"name", "shape", "layout", "dtype", "normalization": {"scale", "offset",
                "formula"}},
      "artifacts": {
        "<id>": {                      # fp32_onnx, int8_onnx, fp32_tflite, int8_tflite
          "path": "<name>_int8.tflite", "format": "onnx"|"tflite", "precision": "fp32"|"int8",
          "size_bytes", "sha256",
          "input": {"name", "shape", "layout", "dtype", "scale", "zero_point",
                    "camera_mapping"},
          "outputs": [OutputSpec dicts in the artifact's output order: name, kind,
                      anchor_start, anchor_count, dtype, scale, zero_point, shape, layout],
          "verification": {...}
        }, ...
      },
      "anchors": {"kind", "source", "file": "anchors.npy", "sha256", "count": 896},
      "decode": DecodeConfig dict (score_thresh, iou_thresh, nms, score_clip, max_detections,
                max_candidates, x/y/w/h_scale),
      "calibration": {...provenance...},
      "export": {"outputs": "split"|"concat", "channel_pad": ..., "opset", "input_type"},
      "verification": {...},
      "stedgeai": {"generate": "stedgeai generate ..."}
    }
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import BlazeEarError
from .postprocess import DecodeConfig, OutputSpec

SCHEMA = "blazeear-edge/manifest/1"
MANIFEST_FILE = "manifest.json"


@dataclass
class Manifest:
    """A parsed export manifest plus the folder it lives in."""

    data: dict
    root: Path

    @property
    def name(self) -> str:
        return self.data.get("name", "model")

    @property
    def artifacts(self) -> dict:
        return self.data.get("artifacts", {})

    def artifact(self, key: str) -> dict:
        if key not in self.artifacts:
            raise BlazeEarError(f"{self.root / MANIFEST_FILE}: no artifact '{key}' "
                                f"(has: {', '.join(self.artifacts) or 'none'})")
        return self.artifacts[key]

    def artifact_path(self, key: str) -> Path:
        return self.root / self.artifact(key)["path"]

    def output_specs(self, key: str) -> list[OutputSpec]:
        return [OutputSpec.from_dict(o) for o in self.artifact(key)["outputs"]]

    def decode_config(self, **overrides) -> DecodeConfig:
        d = dict(self.data.get("decode", {}))
        d.update({k: v for k, v in overrides.items() if v is not None})
        return DecodeConfig.from_dict(d)

    def anchors(self) -> np.ndarray:
        info = self.data.get("anchors", {})
        path = self.root / info.get("file", "anchors.npy")
        if not path.is_file():
            raise BlazeEarError(f"{path}: anchor table named by the manifest is missing")
        a = np.load(path, allow_pickle=False).astype(np.float32)
        if a.shape != (896, 4):
            raise BlazeEarError(f"{path}: anchor table must be (896, 4), got {a.shape}")
        return a


def load_manifest(export_dir: str | os.PathLike) -> Manifest:
    """Read ``EXPORT_DIR/manifest.json`` (or a path to the json itself)."""
    p = Path(export_dir)
    if p.is_dir():
        p = p / MANIFEST_FILE
    if not p.is_file():
        raise BlazeEarError(f"{p}: no export manifest here (run 'blazeear-edge export' first)")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise BlazeEarError(f"{p}: not a readable manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise BlazeEarError(f"{p}: not a blazeear-edge manifest (schema {SCHEMA} expected)")
    return Manifest(data, p.parent)


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
    raise TypeError(f"not JSON serialisable: {type(o)}")
