"""Helpers shared by the ``st_unseen`` builders: the model cache, TFLite full-integer conversion
of a Keras model and ONNX Runtime's static QDQ quantisation of a float ONNX model.

Weights are random (the linter's epochs and footprint depend on the graph, not on the values) and
calibration uses random inputs, so nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras = Keras 2, as ST's model zoo code

import numpy as np  # noqa: E402

CACHE = Path(os.environ.get("ST_UNSEEN_CACHE", "/tmp/blazeear_st_unseen"))
CALIB_SAMPLES = 8


def cached(name: str, build, force: bool = False) -> tuple[Path, float | None]:
    """``(path, seconds)``: the cached model ``name`` (file name with extension), built by
    ``build(path)`` when absent or when ``force``; seconds is ``None`` when it was reused."""
    path = CACHE / name
    if path.is_file() and not force:
        return path, None
    CACHE.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = path.with_name(path.name + ".part")
    build(tmp)
    tmp.replace(path)
    return path, time.perf_counter() - t0


def tflite_int8(model, path: Path, seed: int = 0, io=("int8", "int8")) -> None:
    """Full-integer TFLite conversion of a Keras model (int8 weights per channel, int8
    activations), ``io`` the stored input and output types ("int8", "uint8" or "float32")."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    shape = [1] + [int(d) for d in model.inputs[0].shape[1:]]

    def representative():
        for _ in range(CALIB_SAMPLES):
            yield [rng.uniform(-1, 1, shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    types = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}
    conv.inference_input_type = types[io[0]]
    conv.inference_output_type = types[io[1]]
    path.write_bytes(conv.convert())


def onnx_qdq(float_path: Path, path: Path, seed: int = 0, exclude_ops=()) -> None:
    """ONNX Runtime ``quantize_static``: QDQ format, int8 weights per channel and int8
    activations (ST's model zoo ONNX recipe), calibrated on random inputs; nodes of the types
    ``exclude_ops`` stay float."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    m = onnx.load(str(float_path))
    exclude = [n.name for n in m.graph.node if n.op_type in exclude_ops]
    inp = m.graph.input[0]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.left = CALIB_SAMPLES

        def get_next(self):
            if not self.left:
                return None
            self.left -= 1
            return {inp.name: rng.uniform(-1, 1, shape).astype(np.float32)}

    quantize_static(str(float_path), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=True, nodes_to_exclude=exclude)


def torch_to_onnx(module, example, path: Path, opset: int = 17) -> None:
    """Export a PyTorch module in eval mode with a static input shape, then constant-fold it with
    onnxsim (BatchNorm folded into the convs, shape arithmetic removed; onnxsim also folds a
    zero Pad into the following Conv, as ONNX Runtime's PadFusion does)."""
    import onnx
    import torch
    from onnxsim import simplify

    torch.set_num_threads(1)
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, (example,), str(path), opset_version=opset,
                          input_names=["input"], output_names=["output"], dynamo=False)
    model, ok = simplify(onnx.load(str(path)))
    if not ok:
        raise RuntimeError(f"onnxsim could not check {path}")
    onnx.save(model, str(path))
