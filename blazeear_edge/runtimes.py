"""The one runtime layer: run pre-processed images through PyTorch, ONNX Runtime or the TFLite
interpreter, from an export (:func:`export_runtimes`) or from a model file
(:func:`model_file_runtime`), and time a runtime call (:func:`time_artifact`).

Every runner returns, per image, the raw outputs as a dict ``{output name: array}`` using the
names of the manifest's output specs, in anchor order (1, count, C): ONNX head maps
(1, A * C, H, W) are reordered with :func:`~blazeear_edge.postprocess.to_anchor_major`, so the
same NumPy decode, statistics and C harness read every runtime alike. TFLite output
tensors are matched to the specs by shape (the four head shapes are distinct) when names differ.
Integer inputs are quantised with the model's own input scale and zero point.

Every other module (export's verification, parity, evaluate, bench, the harness) runs models
through here; "not available" only ever means an external runtime package is missing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .anchors import resolve_anchors
from .errors import BlazeEarError
from .postprocess import (CONCAT_OUTPUTS, SPLIT_MAP_OUTPUTS, SPLIT_OUTPUTS, OutputSpec,
                          to_anchor_major)
from .preprocess import quantize_values  # the one byte -> value mapping
from .weights import load_model

#: display names of the runtimes of an export, in report order
RUNTIME_LABELS = {
    "pytorch": "PyTorch fp32",
    "fp32_onnx": "ONNX fp32",
    "fp32_tflite": "TFLite fp32",
    "int8_onnx": "ONNX int8",
    "int8_tflite": "TFLite int8",
}
RUNTIME_KEYS = tuple(RUNTIME_LABELS)


def run_torch(model, nchw: np.ndarray, specs: Sequence[OutputSpec]) -> list[dict]:
    import torch

    out = []
    with torch.no_grad():
        for i in range(len(nchw)):
            res = model(torch.from_numpy(np.ascontiguousarray(nchw[i:i + 1])))
            out.append({s.name: r.numpy() for s, r in zip(specs, res)})
    return out


def onnx_session(path: str | os.PathLike, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        raise BlazeEarError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})")


def run_onnx(path_or_session, nchw: np.ndarray, specs: Sequence[OutputSpec]) -> list[dict]:
    sess = path_or_session
    if isinstance(sess, (str, os.PathLike)):
        sess = onnx_session(sess)
    inp = sess.get_inputs()[0].name
    names = [o.name for o in sess.get_outputs()]
    by_name = {s.name: s for s in specs}
    if not set(names) >= set(by_name):
        raise BlazeEarError(f"ONNX model outputs {names} do not match the manifest's "
                            f"{sorted(by_name)}")
    out = []
    for i in range(len(nchw)):
        res = sess.run(None, {inp: np.ascontiguousarray(nchw[i:i + 1], dtype=np.float32)})
        # head maps (1, A*C, H, W) come back in anchor order (1, count, C), as from TFLite
        out.append({n: to_anchor_major(r, by_name[n]) for n, r in zip(names, res)
                    if n in by_name})
    return out


def tflite_interpreter(path: str | os.PathLike, threads: int = 1):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # pragma: no cover - fall back to TensorFlow's copy
        from tensorflow.lite.python.interpreter import Interpreter, OpResolverType
    try:
        it = Interpreter(model_path=str(path), num_threads=threads,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    except Exception as exc:  # noqa: BLE001
        raise BlazeEarError(f"{path}: the TFLite interpreter cannot load it "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    return it


def tflite_output_map(it, specs: Sequence[OutputSpec]) -> dict:
    """Map interpreter output index -> spec name (by name, else by unique shape)."""
    details = it.get_output_details()
    names = {s.name for s in specs}
    if {d["name"] for d in details} >= names:
        return {d["index"]: d["name"] for d in details if d["name"] in names}
    mapping = {}
    for d in details:
        shape = tuple(int(v) for v in d["shape"])
        hits = [s for s in specs if tuple(s.shape) == shape]
        if len(hits) != 1:
            raise BlazeEarError(f"cannot match TFLite output {d['name']} {shape} to the "
                                f"manifest's outputs")
        mapping[d["index"]] = hits[0].name
    return mapping


def run_tflite(path_or_interp, nhwc: np.ndarray, specs: Sequence[OutputSpec]) -> list[dict]:
    it = path_or_interp
    if isinstance(it, (str, os.PathLike)):
        it = tflite_interpreter(it)
    d_in = it.get_input_details()[0]
    mapping = tflite_output_map(it, specs)
    out = []
    for i in range(len(nhwc)):
        x = np.ascontiguousarray(nhwc[i:i + 1], dtype=np.float32)
        if d_in["dtype"] != np.float32:
            scale, zp = d_in["quantization"]
            x = quantize_values(x, d_in["dtype"], scale, zp)
        it.set_tensor(d_in["index"], x)
        it.invoke()
        out.append({name: it.get_tensor(idx).copy() for idx, name in mapping.items()})
    return out


def run_torch_batched(model, nchw: np.ndarray, specs: Sequence[OutputSpec],
                      batch: int = 32) -> list[dict]:
    """Like :func:`run_torch` (per image ``{name: (1, ...) array}``) but a batch per forward
    call: one image per call is slow and erratic on a busy CPU."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(nchw), batch):
            res = model(torch.from_numpy(np.ascontiguousarray(nchw[i:i + batch])))
            arrs = [r.numpy() for r in res]
            for j in range(arrs[0].shape[0]):
                out.append({s.name: a[j:j + 1] for s, a in zip(specs, arrs)})
    return out


def tflite_io(path: str | os.PathLike, specs: Sequence[OutputSpec]) -> tuple[dict, list]:
    """What a TFLite file really has: its input entry (name, shape, dtype, scale, zero point)
    and its outputs in the file's order as OutputSpec dicts (plus ``tensor_name``, ``index``)."""
    it = tflite_interpreter(path)
    d = it.get_input_details()[0]
    s, z = d["quantization"]
    inp = {"name": d["name"], "shape": [int(v) for v in d["shape"]], "layout": "NHWC",
           "dtype": np.dtype(d["dtype"]).name, "scale": float(s), "zero_point": int(z)}
    mapping = tflite_output_map(it, specs)
    by_name = {sp.name: sp for sp in specs}
    outs = []
    for od in it.get_output_details():
        dtype = np.dtype(od["dtype"]).name
        s, z = od["quantization"]
        q = dtype != "float32"
        o = replace(by_name[mapping[od["index"]]], dtype=dtype, scale=float(s) if q else 1.0,
                    zero_point=int(z) if q else 0)
        outs.append({**o.to_dict(), "tensor_name": od["name"], "index": int(od["index"])})
    return inp, outs


# ---------------------------------------------------------------------------------------------
# runtimes of an export, or of one model file
# ---------------------------------------------------------------------------------------------
@dataclass
class Runtime:
    """One way to run the model: ``run(imageset) -> [{output name: raw array}, ...]``."""

    key: str
    label: str
    precision: str  # fp32 | int8
    fmt: str  # torch | onnx | tflite
    specs: list  # OutputSpec in the runtime's output order (for decoding)
    run: Callable
    path: Path | None = None
    note: str = ""


def tflite_available() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("ai_edge_litert", "tensorflow"))


def torch_reference(manifest, weights: str | os.PathLike | None = None):
    """The PyTorch model the export was made from (same weights, same in-graph logit
    saturation) with its output specs, or (None, reason) when the weights cannot be found or
    differ from the manifest's sha256."""
    from .model import MediaPipeLayout

    info = manifest.model
    src = weights or ("mediapipe" if info.kind == "mediapipe" else info.source)
    if not src:
        return None, "the manifest names no weights"
    if src != "mediapipe" and not Path(src).is_file():
        return None, f"weights not found at {src}"
    try:
        model = load_model(src, fold=True)
    except BlazeEarError as exc:
        return None, str(exc)
    if info.sha256 and model.info.sha256 != info.sha256:
        return None, (f"weights at {model.info.source} differ from the exported ones "
                      f"(sha256 {model.info.sha256[:12]}... vs {info.sha256[:12]}...)")
    model.set_output_clip(manifest.export.logit_saturation, None)
    if manifest.export.outputs == "concat":
        return (MediaPipeLayout(model).eval(), list(CONCAT_OUTPUTS)), ""
    return (model.eval(), list(SPLIT_OUTPUTS)), ""


def export_runtimes(manifest, keys: Sequence[str] | None = None,
                    weights: str | os.PathLike | None = None) -> tuple[list[Runtime], list[str]]:
    """The runtimes of an export, in :data:`RUNTIME_KEYS` order -> (runtimes, notes on the ones
    left out).  ``keys`` selects some (``pytorch``, ``fp32_onnx``, ``int8_onnx``,
    ``fp32_tflite``, ``int8_tflite``)."""
    want = list(RUNTIME_KEYS) if keys is None else list(keys)
    bad = [k for k in want if k not in RUNTIME_KEYS]
    if bad:
        raise BlazeEarError(f"unknown runtime(s) {', '.join(bad)}; choose from "
                            f"{', '.join(RUNTIME_KEYS)}")
    out, notes = [], []
    for key in (k for k in RUNTIME_KEYS if k in want):
        label = RUNTIME_LABELS[key]
        if key == "pytorch":
            ref, why = torch_reference(manifest, weights)
            if ref is None:
                notes.append(f"{label}: not run ({why})")
                continue
            model, specs = ref
            out.append(Runtime(key, label, "fp32", "torch", specs,
                               lambda ims, m=model, s=specs: run_torch_batched(m, ims.nchw, s),
                               None, manifest.model.source or ""))
            continue
        if key not in manifest.artifacts:
            if keys is not None:
                notes.append(f"{label}: not in this export")
            continue
        art = manifest.artifact(key)
        path = manifest.artifact_path(key)
        if not path.is_file():
            raise BlazeEarError(f"{path}: artifact {key} named by the manifest is missing")
        specs = art.output_specs()
        if art.format == "tflite":
            if not tflite_available():
                notes.append(f"{label}: not run (no TFLite interpreter: pip install "
                             f"ai-edge-litert)")
                continue
            it = tflite_interpreter(path)
            out.append(Runtime(key, label, art.precision, "tflite", specs,
                               lambda ims, i=it, s=specs: run_tflite(i, ims.nhwc, s), path))
        else:
            sess = onnx_session(path)
            out.append(Runtime(key, label, art.precision, "onnx", specs,
                               lambda ims, i=sess, s=specs: run_onnx(i, ims.nchw, s), path))
    return out, notes


def _specs_for(outputs: Sequence[tuple]) -> list[OutputSpec]:
    """(name, shape, dtype, scale, zero point) per model output -> OutputSpec, matched to the
    split or concat layout by shape."""
    templates = list(SPLIT_OUTPUTS) + list(CONCAT_OUTPUTS) + list(SPLIT_MAP_OUTPUTS)
    specs = []
    for name, shape, dtype, scale, zp in outputs:
        hits = [t for t in templates if tuple(t.shape) == tuple(shape)]
        if len(hits) != 1:
            raise BlazeEarError(f"model output {name} {tuple(shape)} is not one of the "
                                f"BlazeFace head shapes")
        specs.append(replace(hits[0], name=name, dtype=dtype, scale=scale, zero_point=zp))
    return specs


def model_file_runtime(path: str, anchors: str | None = None):
    """A single model file (.onnx, .tflite or a checkpoint) -> (Runtime, anchor table, name)."""
    p = Path(path)
    if str(path) != "mediapipe" and not p.is_file():
        raise BlazeEarError(f"model not found: {p} (give an export folder or a model file)")
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        import onnx

        sess = onnx_session(p)
        outs = [(o.name, [d if isinstance(d, int) else 1 for d in o.shape], "float32", 1.0, 0)
                for o in sess.get_outputs()]
        specs = _specs_for(outs)
        m = onnx.load(str(p), load_external_data=False)
        int8 = any(n.op_type in ("DequantizeLinear", "QLinearConv") for n in m.graph.node)
        prec = "int8" if int8 else "fp32"
        rt = Runtime("model", f"ONNX {prec}", prec, "onnx", specs,
                     lambda ims, s=sess, sp=specs: run_onnx(s, ims.nchw, sp), p)
        return rt, resolve_anchors(anchors, "unit").table, p.stem
    if suffix == ".tflite":
        it = tflite_interpreter(p)
        outs = []
        for d in it.get_output_details():
            dtype = np.dtype(d["dtype"]).name
            s, z = d["quantization"]
            q = dtype != "float32"
            outs.append((d["name"], [int(v) for v in d["shape"]], dtype,
                         float(s) if q else 1.0, int(z) if q else 0))
        specs = _specs_for(outs)
        # a tensor name may repeat a template name: run_tflite maps by name, else by shape
        prec = "int8" if any(o[2] != "float32" for o in outs) else "fp32"
        rt = Runtime("model", f"TFLite {prec}", prec, "tflite", specs,
                     lambda ims, i=it, sp=specs: run_tflite(i, ims.nhwc, sp), p)
        return rt, resolve_anchors(anchors, "unit").table, p.stem
    model = load_model(str(path), fold=True)
    specs = list(SPLIT_OUTPUTS)
    rt = Runtime("model", "PyTorch fp32", "fp32", "torch", specs,
                 lambda ims, m=model, sp=specs: run_torch_batched(m, ims.nchw, sp),
                 None if str(path) == "mediapipe" else p)
    return rt, resolve_anchors(anchors, model.info.default_anchors).table, model.info.name


# ---------------------------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------------------------
def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def time_artifact(path: str | os.PathLike, fmt: str, x_nchw: np.ndarray, runs: int,
                  warmup: int, progress: bool = True, desc: str = "timing"
                  ) -> tuple[list[float], str]:
    """Milliseconds per inference (one thread, batch 1) of ``runs`` timed calls after ``warmup``
    untimed ones, and the runtime used. Only the runtime call is timed (ONNX Runtime ``run``;
    TFLite ``set_tensor`` + ``invoke`` + reading the outputs), not pre- or post-processing."""
    from tqdm import tqdm

    if fmt == "onnx":
        sess = onnx_session(path, threads=1)
        feed = {sess.get_inputs()[0].name: np.ascontiguousarray(x_nchw, np.float32)}

        def call():
            return sess.run(None, feed)

        runtime = "onnxruntime " + package_version("onnxruntime")
    elif fmt == "tflite":
        it = tflite_interpreter(path, threads=1)
        d_in = it.get_input_details()[0]
        x = np.ascontiguousarray(np.transpose(x_nchw, (0, 2, 3, 1)), np.float32)
        if d_in["dtype"] != np.float32:
            scale, zp = d_in["quantization"]
            x = quantize_values(x, d_in["dtype"], scale, zp)
        outs = [d["index"] for d in it.get_output_details()]
        idx = d_in["index"]

        def call():
            it.set_tensor(idx, x)
            it.invoke()
            return [it.get_tensor(o) for o in outs]

        lite = package_version("ai-edge-litert")
        runtime = ("litert " + lite if lite != "?" else
                   "tflite (tensorflow) " + package_version("tensorflow"))
    else:
        raise BlazeEarError(f"{path}: unknown artifact format {fmt!r} (onnx or tflite)")
    try:
        for _ in range(warmup):
            call()
        times = []
        with tqdm(total=runs, desc=desc, unit="run", disable=not progress, leave=False,
                  file=sys.stderr) as bar:
            for _ in range(runs):
                t0 = time.perf_counter_ns()
                call()
                times.append((time.perf_counter_ns() - t0) / 1e6)
                bar.update(1)
    except Exception as exc:  # noqa: BLE001 - a runtime refusing the model is a row status
        raise BlazeEarError(f"{Path(path).name}: inference failed "
                            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
    return times, runtime
