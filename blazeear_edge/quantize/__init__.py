"""Per-channel INT8 quantisation with maintained tools, never by hand.

* ONNX: onnxruntime's ``quant_pre_process`` + ``quantize_static``: QDQ format, per-channel
  symmetric int8 weights (zero point 0), asymmetric int8 activations (what ST's own ONNX quantiser
  uses and the Neural-ART NPU accepts). Never QUInt8, never QOperator.
* TFLite: the TF Lite converter's full-integer path (per-channel weights) from the SavedModel that
  onnx2tf writes, with the same calibration images; input type float32 (a QUANTIZE at the input,
  as in ST's own BlazeFace), uint8 (camera path) or int8; int8 outputs.
* Calibration ``movavg`` (default): MinMax with ``CalibMovingAverage`` (the mean of per-image
  minima/maxima). Plain global MinMax lets a handful of odd images stretch every activation range;
  on the default export it cost 25/40 face matches against 40/40 with the moving average.
* Weights (``rounding``, before either quantiser runs): AdaRound (default) and optional bias
  correction put every conv weight on the per-channel int8 grid both quantisers recompute, so
  the learned rounding reaches the ONNX and the TFLite artifact alike (docs/int8.md).
* Error report: SQNR of every output and, through onnxruntime's ``qdq_loss_debug``, of every
  activation tensor, float vs int8, worst first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import BlazeEarError
from ..runtimes import onnx_session

CALIBRATION_METHODS = ("movavg", "minmax", "percentile", "entropy")
INPUT_TYPES = ("float32", "uint8", "int8")


class _Reader:
    """onnxruntime ``CalibrationDataReader`` over a (N, 3, 128, 128) float32 array."""

    def __init__(self, name: str, nchw: np.ndarray):
        self.name = name
        self.data = nchw
        self.i = 0

    def get_next(self):
        if self.i >= len(self.data):
            return None
        x = self.data[self.i:self.i + 1]
        self.i += 1
        return {self.name: np.ascontiguousarray(x, dtype=np.float32)}

    def rewind(self):
        self.i = 0


def _reader(nchw, input_name):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(_Reader, CalibrationDataReader):
        pass

    return Reader(input_name, nchw)


def _chain_to_producer(model, name: str) -> list[str]:
    """Tensor names from a graph output back through Reshape/Transpose/Clip/Identity."""
    producer = {o: n for n in model.graph.node for o in n.output}
    names = [name]
    n = producer.get(name)
    while n is not None and n.op_type in ("Reshape", "Transpose", "Clip", "Identity"):
        names.append(n.input[0])
        n = producer.get(n.input[0])
    return names


def output_ranges(fp32_path: str | os.PathLike, calib_nchw: np.ndarray, names) -> dict:
    """Global (min, max) of the named graph outputs over the calibration set."""

    sess = onnx_session(fp32_path)
    inp = sess.get_inputs()[0].name
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    for i in range(len(calib_nchw)):
        res = sess.run(list(names), {inp: calib_nchw[i:i + 1]})
        for n, r in zip(names, res):
            lo[n] = min(lo[n], float(r.min()))
            hi[n] = max(hi[n], float(r.max()))
    return {n: (lo[n], hi[n]) for n in names}


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calib_nchw: np.ndarray,
                  method: str = "movavg", input_name: str = "input",
                  global_range_outputs=(), input_range=(-1.0, 1.0),
                  fixed_output_ranges=None, weight_overrides=None) -> Path:
    """Static QDQ int8 quantisation of ``fp32_path`` into ``out_path``.

    ``global_range_outputs``: graph outputs (the score heads) whose int8 range is the global
    min/max over the calibration set whatever ``method`` says: a moving average of per-image
    maxima would cut off the rare high logits that are the detections.
    ``fixed_output_ranges``: {output name: (lo, hi)} used as is (the score heads, saturated in
    the graph at +-clip, get exactly that range: a calibration set without a confident face
    would otherwise give them a maximum <= 0 and no score could pass 0.5).
    ``input_range``: the input's known value range ([-1, 1] after ``x / 127.5 - 1``), used as
    is rather than calibrated (a calibrated range would clip real pixels).
    ``weight_overrides``: per-channel ``TensorQuantOverrides`` of the Conv weights (from
    :func:`blazeear_edge.quantize.rounding.weight_overrides`): pins the grid the weights were
    prepared on.
    """
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise BlazeEarError(f"calibration method must be one of {CALIBRATION_METHODS}")
    if len(calib_nchw) == 0:
        raise BlazeEarError("the calibration set is empty")
    cm = {"movavg": CalibrationMethod.MinMax, "minmax": CalibrationMethod.MinMax,
          "percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy}[method]
    extra = {"WeightSymmetric": True, "ActivationSymmetric": False}
    if method == "movavg":
        # per-image min/max averaged over the set: a few outlier images no longer set the range
        extra["CalibMovingAverage"] = True
    if method == "percentile":
        extra["CalibPercentile"] = PERCENTILE
    overrides = {}
    if input_range is not None:
        overrides[input_name] = [{"rmin": np.float32(input_range[0]),
                                  "rmax": np.float32(input_range[1])}]
    if global_range_outputs:
        import onnx

        model = onnx.load(str(fp32_path))
        ranges = output_ranges(fp32_path, calib_nchw, list(global_range_outputs))
        for name, (lo, hi) in ranges.items():
            for t in _chain_to_producer(model, name):
                overrides[t] = [{"rmin": np.float32(min(lo, 0.0)), "rmax": np.float32(max(hi, 0.0))}]
    if fixed_output_ranges:
        import onnx

        model = onnx.load(str(fp32_path))
        for name, (lo, hi) in fixed_output_ranges.items():
            for t in _chain_to_producer(model, name):
                overrides[t] = [{"rmin": np.float32(lo), "rmax": np.float32(hi)}]
    if weight_overrides:
        overrides.update(weight_overrides)
    if overrides:
        extra["TensorQuantOverrides"] = overrides
    with tempfile.TemporaryDirectory() as td:
        pre = Path(td) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(out_path), _reader(calib_nchw, input_name),
            quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=False,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=cm, extra_options=extra)
    return Path(out_path)


def _onnx_constants(model) -> dict:
    """{tensor name: array} of a graph's initializers and Constant nodes."""
    from onnx import numpy_helper

    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out.update({n.output[0]: numpy_helper.to_array(a.t) for n in model.graph.node
                if n.op_type == "Constant" for a in n.attribute if a.name == "value"})
    return out


def onnx_output_quantization(path: str | os.PathLike) -> dict:
    """{output name: (scale, zero_point)} of the DequantizeLinear that feeds each graph output."""
    import onnx

    m = onnx.load(str(path))
    inits = _onnx_constants(m)
    producer = {o: n for n in m.graph.node for o in n.output}
    out = {}
    for o in m.graph.output:
        n = producer.get(o.name)
        # walk back through shape-only ops to the DequantizeLinear
        while n is not None and n.op_type in ("Reshape", "Transpose", "Identity"):
            n = producer.get(n.input[0])
        if n is not None and n.op_type == "DequantizeLinear":
            s = inits.get(n.input[1])
            z = inits.get(n.input[2]) if len(n.input) > 2 else np.zeros((), np.int8)
            if s is not None and np.size(s) == 1:
                out[o.name] = (float(np.asarray(s).reshape(())),
                               int(np.asarray(z).reshape(())))
    return out


def _is_score_tensor(shape) -> bool:
    """Score-head tensors: 2 or 6 channels (16x16 / 8x8 maps) or (1, anchors, 1)."""
    shape = tuple(int(v) for v in shape)
    return len(shape) >= 3 and shape[-1] in (1, 2, 6)


#: ORT's CalibPercentile for the ``percentile`` method (both formats use it)
PERCENTILE = 99.999
PERCENTILE_BINS = 2048


def _moving_average_ranges(calibrated: bytes, calib_nhwc: np.ndarray,
                           input_range=(-1.0, 1.0), score_range=None,
                           method: str = "movavg") -> bytes:
    """Replace the TF calibrator's global min/max of every tensor (the float model is run once
    per image with all tensors preserved) by

    * ``movavg``: the mean of per-image minima/maxima;
    * ``percentile``: the :data:`PERCENTILE` of |x| over all images (a histogram of
      :data:`PERCENTILE_BINS` bins of |x| up to the global max, as onnxruntime's Percentile
      calibrator does), clamped to the global min/max; a tensor with negative values gets the
      same bound below zero.

    Score-head tensors keep the global range: averaging per-image maxima would cut off the
    detections."""
    from tensorflow.lite.python.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.convert_bytearray_to_object(bytearray(calibrated))
    sub = model.subgraphs[0]
    idx = [i for i, t in enumerate(sub.tensors)
           if t.quantization is not None and t.quantization.min is not None
           and len(t.quantization.min) == 1 and not _is_score_tensor(t.shape)]
    it = Interpreter(model_content=bytes(calibrated), experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    mins = {i: [] for i in idx}
    maxs = {i: [] for i in idx}
    top = {i: max(abs(float(sub.tensors[i].quantization.min[0])),
                  abs(float(sub.tensors[i].quantization.max[0])), 1e-12) for i in idx}
    hist = {i: np.zeros(PERCENTILE_BINS, np.int64) for i in idx}
    for k in range(len(calib_nhwc)):
        it.set_tensor(inp, np.ascontiguousarray(calib_nhwc[k:k + 1], dtype=np.float32))
        it.invoke()
        for i in idx:
            try:
                v = it.get_tensor(i)
            except ValueError:  # a tensor the interpreter does not keep
                continue
            if v.size:
                mins[i].append(float(v.min()))
                maxs[i].append(float(v.max()))
                if method == "percentile":
                    hist[i] += np.histogram(np.abs(v), PERCENTILE_BINS, (0.0, top[i]))[0]
    for i in idx:
        if not mins[i]:
            continue
        q = sub.tensors[i].quantization
        if method == "percentile":
            cdf = np.cumsum(hist[i]) / max(1, hist[i].sum())
            edges = np.linspace(0.0, top[i], PERCENTILE_BINS + 1)
            thr = float(edges[min(PERCENTILE_BINS,
                                  int(np.searchsorted(cdf, 1.0 - (100.0 - PERCENTILE) / 200.0))
                                  + 1)])
            lo, hi = float(min(mins[i])), float(max(maxs[i]))
            q.min = [max(lo, -thr) if lo < 0 else lo]
            q.max = [min(hi, thr)]
        else:
            q.min = [float(np.mean(mins[i]))]
            q.max = [float(np.mean(maxs[i]))]
    if score_range is not None:  # the score heads' known (saturated) range
        for t in sub.tensors:
            q = t.quantization
            if (q is not None and q.min is not None and len(q.min) == 1
                    and _is_score_tensor(t.shape)):
                q.min, q.max = [float(score_range[0])], [float(score_range[1])]
    if input_range is not None:  # the input's known range, not a calibrated one
        _set_input_range(model, input_range)
    return bytes(fu.convert_object_to_bytearray(model))


def _set_input_range(model, input_range) -> None:
    """Give the graph input, and the output of a PAD / PADV2 reading it (the converter gives a
    pad one quantisation for input and output, so a calibrated pad range would override the
    input's), the known input range."""
    from tensorflow.lite.python import schema_py_generated as schema

    sub = model.subgraphs[0]
    pads = {schema.BuiltinOperator.PAD, schema.BuiltinOperator.PADV2}
    targets = [int(i) for i in sub.inputs]
    for op in sub.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        kind = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if kind in pads and len(op.inputs) and int(op.inputs[0]) in targets:
            targets += [int(o) for o in op.outputs]
    for i in targets:
        q = sub.tensors[i].quantization
        if q is not None and q.min is not None:
            q.min, q.max = [float(input_range[0])], [float(input_range[1])]


def _fixed_ranges(calibrated: bytes, score_range, input_range=None) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.convert_bytearray_to_object(bytearray(calibrated))
    sub = model.subgraphs[0]
    for t in sub.tensors:
        q = t.quantization
        if (score_range is not None and q is not None and q.min is not None and len(q.min) == 1
                and _is_score_tensor(t.shape)):
            q.min, q.max = [float(score_range[0])], [float(score_range[1])]
    if input_range is not None:  # the input's known range (camera input: [0, 1])
        _set_input_range(model, input_range)
    return bytes(fu.convert_object_to_bytearray(model))


def quantize_tflite(saved_model_dir: str | os.PathLike, calib_nhwc: np.ndarray,
                    input_type: str = "float32", method: str = "movavg",
                    score_range=None, input_range=None) -> bytes:
    """Full-integer int8 TFLite (per-channel weights) with int8 outputs.

    ``method`` ``movavg`` (default) swaps the TF calibrator's global min/max for per-image
    moving averages before the converter quantises, as for ONNX; ``percentile`` for the
    99.999th percentile of |x|, as onnxruntime's; ``minmax`` keeps TF's own.
    ``input_range`` (default [-1, 1] for movavg) is the input's known value range; the camera
    input (``export --camera-input``) passes (0, 1).
    """
    import tensorflow as tf
    from tensorflow.lite.python.optimize import calibrator as _cal

    if input_type not in INPUT_TYPES:
        raise BlazeEarError(f"input_type (--input-type) must be one of {INPUT_TYPES}, got {input_type!r}")
    if len(calib_nhwc) == 0:
        raise BlazeEarError("the calibration set is empty")
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for i in range(len(calib_nhwc)):
            yield [np.ascontiguousarray(calib_nhwc[i:i + 1], dtype=np.float32)]

    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = {"float32": tf.float32, "uint8": tf.uint8,
                                 "int8": tf.int8}[input_type]
    conv.inference_output_type = tf.int8
    if method == "minmax" and score_range is None and input_range is None:
        return conv.convert()
    real = _cal.Calibrator.calibrate

    def calibrate(self, dataset_gen):
        calibrated = real(self, dataset_gen)
        if method == "minmax":
            return _fixed_ranges(calibrated, score_range, input_range)
        return _moving_average_ranges(calibrated, calib_nhwc, score_range=score_range,
                                      method=method,
                                      **({"input_range": input_range} if input_range else {}))

    _cal.Calibrator.calibrate = calibrate
    try:
        return conv.convert()
    finally:
        _cal.Calibrator.calibrate = real


def _clamped_outputs(model) -> dict:
    """Output tensor -> (lo, hi) of every Relu and constant-bounded Clip of a float graph."""
    consts = _onnx_constants(model)

    def bound(inputs, k, default):
        if len(inputs) > k and inputs[k]:
            t = consts.get(inputs[k])
            return None if t is None else float(np.asarray(t).reshape(-1)[0])
        return default

    out = {}
    for n in model.graph.node:
        if n.op_type == "Relu":
            out[n.output[0]] = (0.0, np.inf)
        elif n.op_type == "Clip":
            lo, hi = bound(n.input, 1, -np.inf), bound(n.input, 2, np.inf)
            if lo is not None and hi is not None:
                out[n.output[0]] = (lo, hi)
    return out


def activation_sqnr(fp32_path: str | os.PathLike, qdq_path: str | os.PathLike,
                    nchw: np.ndarray, input_name: str = "input") -> list[dict]:
    """Per-tensor SQNR (dB) float vs QDQ through onnxruntime's ``qdq_loss_debug``, worst first.

    ``sqnr_db``: the int8 model against the float model at that tensor (error accumulated so far).
    ``qdq_sqnr_db``: the tensor against its own int8 rounding. The quantiser drops a Relu or Clip
    that feeds a QuantizeLinear (the int8 range does the clamping), so the tensor ORT compares
    there is the unclamped one and its ``qdq_err`` counts the Relu itself as error (1-7 dB on every
    block output). It is clamped first here, as the float graph clamps it."""
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                         compute_activation_error,
                                                         compute_signal_to_quantization_noice_ratio,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    with tempfile.TemporaryDirectory() as td:
        fa = Path(td) / "float_aug.onnx"
        qa = Path(td) / "qdq_aug.onnx"
        modify_model_output_intermediate_tensors(str(fp32_path), str(fa))
        modify_model_output_intermediate_tensors(str(qdq_path), str(qa))
        f_act = collect_activations(str(fa), _reader(nchw, input_name))
        q_act = collect_activations(str(qa), _reader(nchw, input_name))
    matching = create_activation_matching(q_act, f_act)
    err = compute_activation_error(matching)
    import onnx

    clamps = _clamped_outputs(onnx.load(str(fp32_path)))
    rows = []
    for name, e in err.items():
        if "xmodel_err" not in e:
            continue
        qdq = float(e["qdq_err"])
        if name in clamps:
            lo, hi = clamps[name]
            pre = [np.clip(a, lo, hi) for a in matching[name]["pre_qdq"]]
            qdq = float(compute_signal_to_quantization_noice_ratio(
                pre, matching[name]["post_qdq"]))
        rows.append({"tensor": name, "sqnr_db": float(e["xmodel_err"]), "qdq_sqnr_db": qdq})
    rows.sort(key=lambda r: r["sqnr_db"])
    return rows
