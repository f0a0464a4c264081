"""Run one pre-processed batch through PyTorch, ONNX Runtime or the TFLite interpreter.

Every runner returns, per image, the raw outputs as a dict ``{output name: array}`` using the
names of the manifest's output specs, in anchor order (1, count, C): ONNX head maps
(1, A * C, H, W) are reordered with :func:`~blazeear_edge.postprocess.to_anchor_major`, so the
same NumPy decode, statistics and C harness read every runtime alike. TFLite output
tensors are matched to the specs by shape (the four head shapes are distinct) when names differ.
Integer inputs are quantised with the model's own input scale and zero point.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .errors import BlazeEarError
from .postprocess import OutputSpec, to_anchor_major


def _quantize_input(x: np.ndarray, dtype, scale: float, zp: int) -> np.ndarray:
    info = np.iinfo(dtype)
    q = np.round(x / np.float32(scale)) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


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
            x = _quantize_input(x, d_in["dtype"], scale, zp)
        it.set_tensor(d_in["index"], x)
        it.invoke()
        out.append({name: it.get_tensor(idx).copy() for idx, name in mapping.items()})
    return out
