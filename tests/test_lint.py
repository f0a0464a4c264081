"""``blazeear-edge lint``: every rule fires on a small model built here and stays quiet on a clean
one; the mapping estimate reproduces ST's own BlazeFace-128 compile (45 epochs = 23 hardware +
22 hybrid, ``../shared/docs/st-edge-ai.md``); the footprint matches the network's published numbers
(101,390 parameters, about 30.8 M MACs); the command line keeps its exit codes and JSON schema.

Independent references: ST's published compile and op counts, the BlazeFace parameter count,
hand-computed MACs, onnxruntime's and the TF Lite converter's own quantised output, and MediaPipe's
float16 TFLite file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from blazeear_edge.errors import BlazeEarError  # noqa: E402
from blazeear_edge.lint import JSON_KEYS, RULES, lint_model  # noqa: E402

#: ST's published compile of its BlazeFace-128 for the STM32N6 (ST Edge AI Core 3.0.0)
ST_BLAZEFACE_OPS = {"CONV_2D": 21, "DEPTHWISE_CONV_2D": 16, "ADD": 16, "PAD": 11, "RESHAPE": 4,
                    "MAX_POOL_2D": 3, "QUANTIZE": 1, "DEQUANTIZE": 4}
ST_BLAZEFACE_EPOCHS = {"hw": 23, "hybrid": 22, "sw": 0}
#: the stedgeai options of that compile (--input-data-type uint8 --output-data-type int8)
ST_IO = {"input_data_type": "uint8", "output_data_type": "int8"}
BLAZEFACE_PARAMS = 101_390

BACKBONE1 = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2),
             (48, 56, 1), (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
BACKBONE2 = [(88, 96, 2), (96, 96, 1), (96, 96, 1), (96, 96, 1), (96, 96, 1)]
HEADS = [("x", 32, (1, 512, 16), "regressors_16x16"), ("x", 2, (1, 512, 1), "scores_16x16"),
         ("h", 96, (1, 384, 16), "regressors_8x8"), ("h", 6, (1, 384, 1), "scores_8x8")]


def blazeface_macc() -> int:
    """MACs of the BlazeFace front topology, counted by hand from the layer list."""
    total = 64 * 64 * 24 * 3 * 25  # stem 5x5 s2 on 128 -> 64
    size = 64
    for i, o, s in BACKBONE1 + BACKBONE2:
        size //= s
        total += size * size * i * 9 + size * size * i * o  # depthwise 3x3 + pointwise
    total += 16 * 16 * 88 * (32 + 2) + 8 * 8 * 96 * (96 + 6)  # heads
    return total


# ---------------------------------------------------------------------------------------------
# model builders
# ---------------------------------------------------------------------------------------------
def make_model(nodes, inputs, outputs, inits=(), opset=17):
    """A checked ONNX model; inputs/outputs as (name, elem_type, shape)."""
    g = oh.make_graph(nodes, "t", [oh.make_tensor_value_info(*i) for i in inputs],
                      [oh.make_tensor_value_info(*o) for o in outputs], list(inits))
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
    m.ir_version = 8 if opset <= 17 else 10
    onnx.checker.check_model(m)
    return m


def init(name, arr):
    return nh.from_array(np.asarray(arr), name)


def rand(shape, seed=0, scale=0.1):
    return np.random.default_rng(seed).normal(0, scale, shape).astype(np.float32)


def clean_float_model():
    """Conv+Relu, MaxPool, depthwise, pointwise, residual Add, Concat, Reshape: all NPU-friendly."""
    nodes = [
        oh.make_node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", kernel_shape=[3, 3],
                     pads=[1, 1, 1, 1]),
        oh.make_node("Relu", ["c1"], ["r1"], "relu1"),
        oh.make_node("MaxPool", ["r1"], ["p1"], "pool1", kernel_shape=[2, 2], strides=[2, 2]),
        oh.make_node("Conv", ["p1", "wd", "bd"], ["d1"], "dw", kernel_shape=[3, 3],
                     pads=[1, 1, 1, 1], group=8),
        oh.make_node("Conv", ["d1", "wp", "bp"], ["c2"], "pw", kernel_shape=[1, 1]),
        oh.make_node("Add", ["c2", "p1"], ["a1"], "add"),
        oh.make_node("Relu", ["a1"], ["r2"], "relu2"),
        oh.make_node("Concat", ["r2", "p1"], ["cat"], "concat", axis=1),
        oh.make_node("Reshape", ["cat", "shape"], ["y"], "reshape"),
    ]
    inits = [init("w1", rand((8, 3, 3, 3))), init("b1", rand(8, 1)),
             init("wd", rand((8, 1, 3, 3), 2)), init("bd", rand(8, 3)),
             init("wp", rand((8, 8, 1, 1), 4)), init("bp", rand(8, 5)),
             init("shape", np.array([1, 16, 64], np.int64))]
    return make_model(nodes, [("x", TP.FLOAT, (1, 3, 16, 16))], [("y", TP.FLOAT, (1, 16, 64))],
                      inits)


def blazeface_onnx(channel_pad="pad", transpose_heads=False, seed=0):
    """The BlazeFace front topology in ONNX (NCHW) with ST's op structure.

    Spatial padding lives in the convolutions (TFLite SAME), the skip paths are widened by
    ``channel_pad``: a channel-axis ``Pad``, a ``Concat`` with zeros, or an identity 1x1 ``Conv``.
    """
    rng = np.random.default_rng(seed)
    nodes, inits, count = [], [], [0]

    def uid(p):
        count[0] += 1
        return f"{p}_{count[0]}"

    def const(name, arr):
        inits.append(init(name, arr))
        return name

    def conv(x, cin, cout, k, s=1, pads=(0, 0, 0, 0), group=1, relu=False):
        n = uid("conv")
        w = const(n + "_w", rng.normal(0, 0.1, (cout, cin // group, k, k)).astype(np.float32))
        b = const(n + "_b", rng.normal(0, 0.1, cout).astype(np.float32))
        nodes.append(oh.make_node("Conv", [x, w, b], [n], n, kernel_shape=[k, k],
                                  strides=[s, s], pads=list(pads), group=group))
        if not relu:
            return n
        nodes.append(oh.make_node("Relu", [n], [n + "_r"], n + "_relu"))
        return n + "_r"

    def block(x, i, o, s, size):
        h = conv(x, i, i, 3, s, (1, 1, 1, 1) if s == 1 else (0, 0, 1, 1), group=i)
        h = conv(h, i, o, 1)
        if s == 2:
            n = uid("maxpool")
            nodes.append(oh.make_node("MaxPool", [x], [n], n, kernel_shape=[2, 2], strides=[2, 2]))
            x, size = n, size // 2
        if o > i:
            n = uid("widen")
            if channel_pad == "pad":
                p = const(n + "_pads", np.array([0, 0, 0, 0, 0, o - i, 0, 0], np.int64))
                nodes.append(oh.make_node("Pad", [x, p], [n], n))
            elif channel_pad == "concat":
                z = const(n + "_zeros", np.zeros((1, o - i, size, size), np.float32))
                nodes.append(oh.make_node("Concat", [x, z], [n], n, axis=1))
            else:
                w = np.zeros((o, i, 1, 1), np.float32)
                w[np.arange(i), np.arange(i)] = 1.0
                nodes.append(oh.make_node("Conv", [x, const(n + "_w", w)], [n], n,
                                          kernel_shape=[1, 1]))
            x = n
        n = uid("add")
        nodes.append(oh.make_node("Add", [h, x], [n], n))
        nodes.append(oh.make_node("Relu", [n], [n + "_r"], n + "_relu"))
        return n + "_r", size

    x, size = conv("input", 3, 24, 5, 2, (1, 1, 2, 2), relu=True), 64
    for b in BACKBONE1:
        x, size = block(x, *b, size)
    h = x
    for b in BACKBONE2:
        h, _ = block(h, *b, size)
        size = 8
    outs = []
    for src, cout, shape, name in HEADS:
        y = conv(x if src == "x" else h, 88 if src == "x" else 96, cout, 1)
        if transpose_heads:
            t = uid("transpose")
            nodes.append(oh.make_node("Transpose", [y], [t], t, perm=[0, 2, 3, 1]))
            y = t
        nodes.append(oh.make_node("Reshape", [y, const(name + "_shape", np.array(shape))],
                                  [name], name + "_reshape"))
        outs.append((name, TP.FLOAT, shape))
    return make_model(nodes, [("input", TP.FLOAT, (1, 3, 128, 128))], outs, inits)


def quantize(model, tmp_path, name, *, fmt="QDQ", act="QInt8", weight="QInt8", per_channel=True,
             weight_symmetric=True, exclude=()):
    """onnxruntime's quantize_static on random calibration data (ST's settings by default)."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    src = tmp_path / f"{name}_fp32.onnx"
    dst = tmp_path / f"{name}.onnx"
    onnx.save(model, src)
    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.data = [{inp.name: rng.uniform(-1, 1, shape).astype(np.float32)}
                         for _ in range(2)]

        def get_next(self):
            return self.data.pop() if self.data else None

    quantize_static(str(src), str(dst), Reader(), quant_format=getattr(QuantFormat, fmt),
                    per_channel=per_channel, activation_type=getattr(QuantType, act),
                    weight_type=getattr(QuantType, weight), nodes_to_exclude=list(exclude),
                    extra_options={"WeightSymmetric": weight_symmetric,
                                   "ActivationSymmetric": False})
    return dst


def fired(rep) -> set:
    return {f.rule for f in rep.findings}


@pytest.fixture(scope="module")
def qdir(tmp_path_factory):
    return tmp_path_factory.mktemp("lint")


@pytest.fixture(scope="module")
def clean_qdq(qdir):
    return quantize(clean_float_model(), qdir, "clean_qdq")


# ---------------------------------------------------------------------------------------------
# small models that fire one error rule each
# ---------------------------------------------------------------------------------------------
def m_float16():
    n = [oh.make_node("Conv", ["x", "w"], ["y"], "conv16", kernel_shape=[1, 1])]
    return make_model(n, [("x", TP.FLOAT16, (1, 3, 8, 8))], [("y", TP.FLOAT16, (1, 4, 8, 8))],
                      [init("w", rand((4, 3, 1, 1)).astype(np.float16))])


def m_weight_only_qdq():
    """Float activations into a Conv whose int8 weights come through DequantizeLinear."""
    n = [oh.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], "w_dq", axis=0),
         oh.make_node("Conv", ["x", "w"], ["y"], "conv_wo", kernel_shape=[1, 1])]
    inits = [init("wq", np.ones((4, 3, 1, 1), np.int8)), init("ws", np.full(4, 0.1, np.float32)),
             init("wz", np.zeros(4, np.int8))]
    return make_model(n, [("x", TP.FLOAT, (1, 3, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))], inits)


def m_dynamic():
    n = [oh.make_node("Relu", ["x"], ["y"], "relu")]
    dims = ("N", 3, "H", "W")
    return make_model(n, [("x", TP.FLOAT, dims)], [("y", TP.FLOAT, dims)])


def m_rank5():
    n = [oh.make_node("Reshape", ["x", "s5"], ["r5"], "to5d"),
         oh.make_node("Relu", ["r5"], ["a5"], "relu5d"),
         oh.make_node("Reshape", ["a5", "s4"], ["y"], "to4d")]
    inits = [init("s5", np.array([1, 2, 2, 8, 8], np.int64)),
             init("s4", np.array([1, 4, 8, 8], np.int64))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))], inits)


def m_unconnected():
    n = [oh.make_node("Split", ["x", "sp"], ["a", "b"], "split", axis=1),
         oh.make_node("Relu", ["a"], ["y"], "relu")]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 2, 8, 8))],
                      [init("sp", np.array([2, 2], np.int64))])


def m_opset21():
    n = [oh.make_node("Relu", ["x"], ["y"], "relu")]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))],
                      opset=21)


def m_topk():
    n = [oh.make_node("Reshape", ["x", "s"], ["f"], "flat"),
         oh.make_node("TopK", ["f", "k"], ["v", "i"], "topk", axis=1)]
    inits = [init("s", np.array([1, 256], np.int64)), init("k", np.array([5], np.int64))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("v", TP.FLOAT, (1, 5)),
                                                           ("i", TP.INT64, (1, 5))], inits)


def m_nms():
    n = [oh.make_node("NonMaxSuppression", ["boxes", "scores", "mo", "iou"], ["sel"], "nms")]
    inits = [init("mo", np.array([10], np.int64)), init("iou", np.array([0.3], np.float32))]
    return make_model(n, [("boxes", TP.FLOAT, (1, 896, 4)), ("scores", TP.FLOAT, (1, 1, 896))],
                      [("sel", TP.INT64, (None, 3))], inits)


def m_where(dynamic: bool):
    n = [oh.make_node("Greater", ["x", "zero"], ["cond"], "gt")] if dynamic else []
    n += [oh.make_node("Where", ["cond", "x", "zero"], ["y"], "where")]
    inits = [init("zero", np.zeros((1,), np.float32))]
    if not dynamic:
        inits.append(init("cond", np.ones((1, 4, 8, 8), bool)))
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))], inits)


def m_pad_value():
    n = [oh.make_node("Pad", ["x", "pads", "cv"], ["y"], "pad_cv")]
    inits = [init("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
             init("cv", np.array(0.0, np.float32))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 4, 10, 10))], inits)


def m_slice(end):
    n = [oh.make_node("Slice", ["x", "st", "en", "ax"], ["y"], "slice")]
    inits = [init("st", np.array([1], np.int64)), init("en", np.array([end], np.int64)),
             init("ax", np.array([1], np.int64))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, None, 8, 8))],
                      inits)


def m_slice_static(end):
    """m_slice with the output shape declared (the demoted rule alone, no dynamic-shape)."""
    m = m_slice(end)
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 3
    return m


def m_transpose_mid():
    n = [oh.make_node("Conv", ["x", "w"], ["c"], "conv", kernel_shape=[1, 1]),
         oh.make_node("Transpose", ["c"], ["t"], "to_nhwc", perm=[0, 2, 3, 1]),
         oh.make_node("Relu", ["t"], ["r"], "relu_nhwc"),
         oh.make_node("Transpose", ["r"], ["t2"], "to_nchw", perm=[0, 3, 1, 2]),
         oh.make_node("Conv", ["t2", "w2"], ["y"], "conv2", kernel_shape=[1, 1])]
    inits = [init("w", rand((4, 4, 1, 1))), init("w2", rand((4, 4, 1, 1), 1))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))], inits)


def m_transpose_tail():
    n = [oh.make_node("Conv", ["x", "w"], ["c"], "conv", kernel_shape=[1, 1]),
         oh.make_node("Transpose", ["c"], ["t"], "to_nhwc", perm=[0, 2, 3, 1]),
         oh.make_node("Reshape", ["t", "s"], ["y"], "flat")]
    inits = [init("w", rand((4, 4, 1, 1))), init("s", np.array([1, 64, 4], np.int64))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 64, 4))], inits)


def m_clip_dq():
    n = [oh.make_node("DequantizeLinear", ["lo_q", "s"], ["lo"], "lo_dq"),
         oh.make_node("DequantizeLinear", ["hi_q", "s"], ["hi"], "hi_dq"),
         oh.make_node("Clip", ["x", "lo", "hi"], ["y"], "clip")]
    inits = [init("lo_q", np.array(0, np.int8)), init("hi_q", np.array(60, np.int8)),
             init("s", np.array(0.1, np.float32))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))], inits)


def m_clip_plain():
    n = [oh.make_node("Clip", ["x", "lo", "hi"], ["y"], "clip")]
    inits = [init("lo", np.array(0.0, np.float32)), init("hi", np.array(6.0, np.float32))]
    return make_model(n, [("x", TP.FLOAT, (1, 4, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))], inits)


ERROR_CASES = {
    "float16": m_float16,
    "weight-only-quant": m_weight_only_qdq,
    "dynamic-shape": m_dynamic,
    "unconnected-output": m_unconnected,
    "opset": m_opset21,
    "unsupported-op": m_nms,
    "pad-constant-value": m_pad_value,
    "clip-dq-bounds": m_clip_dq,
}

#: rules that were errors until issue 25's audit: no source pins their failing condition down
#: (docs/lint.md, "Audit of the error rules"), so they warn ("may fail") and never exit 1
DEMOTED_CASES = {
    "rank-layout": m_rank5,
    "maybe-unsupported-op": m_topk,
    "slice-ends": lambda: m_slice_static(2**63 - 1),
    "transpose-mid-graph": m_transpose_mid,
}


@pytest.mark.parametrize("rule", sorted(DEMOTED_CASES))
def test_unproven_rule_warns_and_never_fails(rule, clean_qdq):
    rep = lint_model(DEMOTED_CASES[rule]())
    assert rule in fired(rep), rep.format_text()
    assert RULES[rule].severity == "warning"
    assert rep.summary["errors"] == 0 and rep.exit_code() == 0
    assert rep.exit_code(strict=True) == 1  # --strict still turns the warning into exit 1
    hit = [f for f in rep.findings if f.rule == rule][0]
    assert hit.severity == "warning" and hit.source == RULES[rule].source
    assert hit.message.startswith("may fail") or rule == "transpose-mid-graph"
    assert rule not in fired(lint_model(clean_qdq))


@pytest.mark.parametrize("rule", sorted(ERROR_CASES))
def test_error_rule_fires_and_clean_model_is_quiet(rule, clean_qdq):
    rep = lint_model(ERROR_CASES[rule]())
    assert rule in fired(rep), rep.format_text()
    assert RULES[rule].severity == "error"
    assert rep.summary["errors"] >= 1 and rep.exit_code() == 1
    hit = [f for f in rep.findings if f.rule == rule][0]
    assert hit.source == RULES[rule].source and hit.hint
    clean = lint_model(clean_qdq)
    assert rule not in fired(clean)


def test_clean_qdq_model_from_onnxruntime_has_no_errors(clean_qdq):
    rep = lint_model(clean_qdq, output_data_type="int8")
    assert rep.summary["errors"] == 0, rep.format_text()
    # integer outputs asked for: the conversions are absorbed, nothing to say
    assert fired(rep) == set()
    assert rep.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 0} and rep.mapping.exact
    assert rep.exit_code() == 0 and rep.exit_code(strict=True) == 0
    # stedgeai's default keeps the file's float output: its DequantizeLinear is software and
    # the Concat feeding it becomes a hybrid LL_ATON_LIB_Concat (ObjectDetection's yolo_x)
    dflt = lint_model(clean_qdq)
    assert dflt.mapping.epochs == {"hw": 1, "hybrid": 1, "sw": 1}
    assert fired(dflt) == {"float-io"} and dflt.exit_code(strict=True) == 1
    # every QDQ pair around a quantised operator was folded: the graph is int8 inside
    units = Counter(p.unit for p in rep.mapping.ops)
    assert units == {"hw": len(rep.mapping.ops)}
    # hand count: conv 16*16*8*27 + depthwise 8*8*8*9 + pointwise 8*8*8*8
    assert rep.macc == 16 * 16 * 8 * 27 + 8 * 8 * 8 * 9 + 8 * 8 * 8 * 8
    assert rep.params == 8 * 27 + 8 + 8 * 9 + 8 + 64 + 8


def test_float_io_counts_as_software_with_float_io_types(clean_qdq):
    rep = lint_model(clean_qdq, float_io=True)
    assert rep.mapping.epochs["sw"] == 2  # the input QuantizeLinear and the output Dequantize
    assert rep.mapping.epochs["hw"] == 1
    inp = lint_model(clean_qdq, input_data_type="float32", output_data_type="int8")
    assert inp.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 1}  # the input end only


def test_quint8_and_qoperator_variants_fail(qdir):
    u8 = lint_model(quantize(clean_float_model(), qdir, "quint8", act="QUInt8", weight="QUInt8"))
    assert "onnx-uint8" in fired(u8) and u8.exit_code() == 1
    qop = lint_model(quantize(clean_float_model(), qdir, "qop", fmt="QOperator"))
    assert "qoperator" in fired(qop) and qop.exit_code() == 1
    assert any(f.op == "QLinearConv" for f in qop.findings if f.rule == "qoperator")


def test_dynamic_quantization_is_weight_only(qdir):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src = qdir / "dyn_fp32.onnx"
    onnx.save(clean_float_model(), src)
    quantize_dynamic(str(src), str(qdir / "dyn.onnx"), weight_type=QuantType.QInt8)
    rep = lint_model(qdir / "dyn.onnx")
    assert "weight-only-quant" in fired(rep)


def m_qdq_conv(weight_zp=0, act=TP.INT8):
    """A hand-written QDQ Conv: x -> Q -> DQ -> Conv(DQ(int8 w)) -> Q -> DQ -> y."""
    adt = {TP.INT8: np.int8, TP.INT16: np.int16}[act]
    n = [oh.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], "x_q"),
         oh.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], "x_dq"),
         oh.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], "w_dq", axis=0),
         oh.make_node("Conv", ["xd", "w"], ["c"], "conv", kernel_shape=[1, 1]),
         oh.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"], "c_q"),
         oh.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"], "c_dq")]
    inits = [init("xs", np.array(0.01, np.float32)), init("xz", np.array(0, adt)),
             init("ys", np.array(0.02, np.float32)), init("yz", np.array(3, adt)),
             init("wq", np.ones((4, 3, 1, 1), np.int8)), init("ws", np.full(4, 0.1, np.float32)),
             init("wz", np.full(4, weight_zp, np.int8))]
    return make_model(n, [("x", TP.FLOAT, (1, 3, 8, 8))], [("y", TP.FLOAT, (1, 4, 8, 8))], inits,
                      opset=21 if act == TP.INT16 else 17)


def test_quant_scheme_weight_zero_point_and_int16_activations():
    good = lint_model(m_qdq_conv(0), output_data_type="int8")
    assert good.summary["errors"] == 0 and good.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 0}
    assert [p.op for p in good.mapping.ops] == ["QuantizeLinear", "Conv", "DequantizeLinear"]
    asym = lint_model(m_qdq_conv(5))
    assert [f.node for f in asym.findings if f.rule == "quant-scheme"] == ["conv"]
    a16 = lint_model(m_qdq_conv(0, TP.INT16))
    assert any("int16" in f.message for f in a16.findings if f.rule == "quant-scheme")


def test_dynamic_dims_fail_but_symbolic_batch_is_only_info():
    rep = lint_model(m_dynamic())
    dyn = [f for f in rep.findings if f.rule == "dynamic-shape"]
    assert dyn and "axis 2 (H)" in dyn[0].message and "axis 3 (W)" in dyn[0].message
    assert "batch-symbolic" in fired(rep)
    m = make_model([oh.make_node("Relu", ["x"], ["y"], "relu")],
                   [("x", TP.FLOAT, ("N", 3, 8, 8))], [("y", TP.FLOAT, ("N", 3, 8, 8))])
    rep = lint_model(m)
    assert "batch-symbolic" in fired(rep) and "dynamic-shape" not in fired(rep)
    assert rep.activations_peak_bytes == 2 * 3 * 8 * 8 * 4  # batch taken as 1


def test_unsupported_ops_and_static_where():
    assert "unsupported-op" in fired(lint_model(m_nms()))
    assert "unsupported-op" not in fired(lint_model(m_topk()))  # only "may fail"
    assert "maybe-unsupported-op" in fired(lint_model(m_where(dynamic=True)))
    assert not {"unsupported-op", "maybe-unsupported-op"} & fired(lint_model(
        m_where(dynamic=False)))


def test_slice_negative_end_fails_and_explicit_end_passes():
    assert "slice-ends" in fired(lint_model(m_slice(-1)))
    assert "slice-ends" not in fired(lint_model(m_slice(4)))


def test_clip_with_plain_bounds_is_fine():
    assert "clip-dq-bounds" not in fired(lint_model(m_clip_plain()))


def test_tail_transpose_is_a_hybrid_warning_not_an_error():
    rep = lint_model(m_transpose_tail())
    assert "transpose" in fired(rep) and "transpose-mid-graph" not in fired(rep)
    mid = lint_model(m_transpose_mid())
    assert [f.node for f in mid.findings if f.rule == "transpose-mid-graph"] == ["to_nhwc",
                                                                                 "to_nchw"]


# ---------------------------------------------------------------------------------------------
# warnings
# ---------------------------------------------------------------------------------------------
def _single(op, attrs=None, x_shape=(1, 4, 8, 8), y_shape=(1, 4, 8, 8), extra_inputs=(),
            inits=()):
    n = [oh.make_node(op, ["x", *extra_inputs], ["y"], op.lower(), **(attrs or {}))]
    return make_model(n, [("x", TP.FLOAT, x_shape)], [("y", TP.FLOAT, y_shape)], inits)


def test_software_ops_warn():
    assert "software-op" in fired(lint_model(_single("Softmax", {"axis": 1})))
    resize_in = [init("roi", np.array([], np.float32)),
                 init("scales", np.array([1, 1, 2, 2], np.float32))]
    lin = lint_model(_single("Resize", {"mode": "linear"}, y_shape=(1, 4, 16, 16),
                             extra_inputs=["roi", "scales"], inits=resize_in))
    near = lint_model(_single("Resize", {"mode": "nearest"}, y_shape=(1, 4, 16, 16),
                              extra_inputs=["roi", "scales"], inits=resize_in))
    assert "software-op" in fired(lin) and "software-op" not in fired(near)


def test_unknown_op_warns():
    rep = lint_model(_single("Erf"))
    assert "unknown-op" in fired(rep) and rep.mapping.ops[0].unit == "sw"


def test_decomposed_kernels_warn_but_blazeface_stem_does_not():
    k5s1 = _single("Conv", {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2]},
                   extra_inputs=["w"], inits=[init("w", rand((4, 4, 5, 5)))])
    assert "decomposed-kernel" in fired(lint_model(k5s1))
    k5s2 = _single("Conv", {"kernel_shape": [5, 5], "pads": [1, 1, 2, 2], "strides": [2, 2]},
                   y_shape=(1, 4, 4, 4), extra_inputs=["w"], inits=[init("w", rand((4, 4, 5, 5)))])
    assert "decomposed-kernel" not in fired(lint_model(k5s2))
    pool4 = _single("MaxPool", {"kernel_shape": [4, 4], "strides": [4, 4]}, y_shape=(1, 4, 2, 2))
    assert "decomposed-kernel" in fired(lint_model(pool4))


def test_bidirectional_broadcast_warns():
    bi = make_model([oh.make_node("Add", ["a", "b"], ["y"], "add")],
                    [("a", TP.FLOAT, (1, 4, 1, 8)), ("b", TP.FLOAT, (1, 1, 8, 1))],
                    [("y", TP.FLOAT, (1, 4, 8, 8))])
    uni = make_model([oh.make_node("Add", ["a", "b"], ["y"], "add")],
                     [("a", TP.FLOAT, (1, 4, 8, 8)), ("b", TP.FLOAT, (1, 4, 1, 1))],
                     [("y", TP.FLOAT, (1, 4, 8, 8))])
    assert "broadcast" in fired(lint_model(bi)) and "broadcast" not in fired(lint_model(uni))


def test_float_model_and_float_op_in_quantised_model(qdir, clean_qdq):
    flt = lint_model(clean_float_model())
    assert "float-model" in fired(flt)
    assert flt.mapping.epochs["hw"] == 0 and flt.mapping.epochs["sw"] == 8  # all but Reshape
    part = lint_model(quantize(clean_float_model(), qdir, "partial", exclude=["pw"]))
    assert "float-op" in fired(part) and "float-model" not in fired(part)
    assert [f.node for f in part.findings if f.rule == "float-op" and f.op == "Conv"] == ["pw"]
    assert part.mapping.epochs["sw"] >= 1
    assert "float-model" not in fired(lint_model(clean_qdq))


def test_per_tensor_weights_warn(qdir, clean_qdq):
    rep = lint_model(quantize(clean_float_model(), qdir, "pertensor", per_channel=False))
    assert "per-tensor-weights" in fired(rep)
    assert "per-tensor-weights" not in fired(lint_model(clean_qdq))


# ---------------------------------------------------------------------------------------------
# mapping: calibration on ST's BlazeFace compile, and the exporter's channel-padding choice
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blazeface_qdq(qdir):
    return {mode: quantize(blazeface_onnx(mode), qdir, f"blazeface_{mode}")
            for mode in ("pad", "concat", "conv")}


def test_blazeface_onnx_qdq_matches_st_compile(blazeface_qdq):
    rep = lint_model(blazeface_qdq["pad"], **ST_IO)
    assert rep.mapping.epochs == ST_BLAZEFACE_EPOCHS
    assert rep.mapping.total_epochs == 45
    assert rep.summary["errors"] == 0
    assert sum(f.rule == "channel-pad" for f in rep.findings) == 11
    assert rep.params == BLAZEFACE_PARAMS
    assert rep.macc == blazeface_macc()
    assert abs(rep.macc - 30.8e6) / 30.8e6 < 0.01
    # int8: one byte per weight, four per int32 bias; ST's compile reports 105.98 KiB
    assert 100 * 1024 < rep.weights_bytes < 110 * 1024


def test_channel_pad_rewrites_ranked_by_cost(blazeface_qdq):
    pad, concat, conv = (lint_model(blazeface_qdq[m], **ST_IO) for m in ("pad", "concat", "conv"))
    for rep in (concat, conv):
        assert rep.mapping.epochs["hybrid"] == 0 and rep.mapping.epochs["sw"] == 0
        assert "channel-pad" not in fired(rep) and rep.summary["errors"] == 0
    assert concat.macc == pad.macc  # zeros concatenated: no arithmetic
    # identity 1x1 convs cost MACs: in*out per pixel of each widened skip path
    sizes = {24: 64, 28: 32, 32: 32, 36: 32, 42: 16, 48: 16, 56: 16, 64: 16, 72: 16, 80: 16,
             88: 8}
    extra = sum(sizes[i] ** 2 * i * o for i, o, _ in BACKBONE1 + BACKBONE2 if o > i)
    assert conv.macc == pad.macc + extra
    assert concat.weights_bytes > pad.weights_bytes  # the zero blocks are stored
    assert concat.mapping.cost < conv.mapping.cost < pad.mapping.cost


def test_float_model_rewrites_compared_as_if_quantised():
    reps = {m: lint_model(blazeface_onnx(m), assume_int8=True) for m in ("pad", "concat", "conv")}
    assert reps["pad"].mapping.epochs == ST_BLAZEFACE_EPOCHS
    assert reps["concat"].mapping.epochs == reps["conv"].mapping.epochs == {"hw": 1, "hybrid": 0,
                                                                           "sw": 0}
    assert reps["concat"].mapping.cost < reps["conv"].mapping.cost < reps["pad"].mapping.cost
    plain = lint_model(blazeface_onnx("pad"))  # without the assumption: all software
    assert plain.mapping.epochs["hw"] == 0 and plain.mapping.epochs["sw"] > 45
    assert fired(plain) == fired(reps["pad"]) and "channel-pad" in fired(plain)


def test_transposed_heads_add_hybrid_epochs():
    rep = lint_model(blazeface_onnx("concat", transpose_heads=True))  # float: all software
    assert sum(p.intrinsic == "transpose" for p in rep.mapping.ops) == 4
    assert sum(f.rule == "transpose" for f in rep.findings) == 4
    assert "transpose-mid-graph" not in fired(rep)


def test_in_memory_model_is_accepted(blazeface_qdq):
    m = onnx.load(str(blazeface_qdq["pad"]))
    rep = lint_model(m, **ST_IO)  # (its speed: benchmarks/bench_lint.py)
    assert rep.mapping.epochs == ST_BLAZEFACE_EPOCHS
    assert rep.model.startswith("<")


@pytest.fixture(scope="module")
def tflite_models(qdir):
    """ST's BlazeFace op structure through the TF Lite converter (int8, float I/O), plus the
    float16 and dynamic-range variants of a small model."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)

    def w(*shape):
        return tf.constant(rng.normal(0, 0.1, shape).astype(np.float32))

    def conv(x, k, i, o, s=1):
        return tf.nn.conv2d(x, w(k, k, i, o), s, "SAME") + w(o)

    def block(x, i, o, s):
        h = tf.nn.depthwise_conv2d(x, w(3, 3, i, 1), [1, s, s, 1], "SAME") + w(i)
        h = conv(h, 1, i, o)
        if s == 2:
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
        if o > i:
            x = tf.pad(x, [[0, 0], [0, 0], [0, 0], [0, o - i]])
        return tf.nn.relu(h + x)

    @tf.function(input_signature=[tf.TensorSpec((1, 128, 128, 3), tf.float32)])
    def blazeface(inp):
        x = tf.nn.relu(conv(inp, 5, 3, 24, 2))
        for b in BACKBONE1:
            x = block(x, *b)
        h = x
        for b in BACKBONE2:
            h = block(h, *b)
        heads = []
        for src, cout, shape, _ in HEADS:
            s = x if src == "x" else h
            heads.append(tf.reshape(conv(s, 1, s.shape[-1], cout), shape))
        return heads

    @tf.function(input_signature=[tf.TensorSpec((1, 16, 16, 8), tf.float32)])
    def small(inp):
        return tf.nn.relu(conv(inp, 3, 8, 16))

    def convert(fn, mode):
        c = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        if mode in ("int8", "dynamic", "float16"):
            c.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "int8":
            shape = fn.input_signature[0].shape
            c.representative_dataset = lambda: (
                [rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(2))
            c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "float16":
            c.target_spec.supported_types = [tf.float16]
        return c.convert()

    out = {}
    for name, fn, mode in [("blazeface_int8", blazeface, "int8"), ("small_fp16", small, "float16"),
                           ("small_dynamic", small, "dynamic"), ("small_int8", small, "int8"),
                           ("small_fp32", small, "fp32")]:
        p = qdir / f"{name}.tflite"
        p.write_bytes(convert(fn, mode))
        out[name] = p
    return out


def _tflite_op_counts(path) -> Counter:
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    m = tflite.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    g = m.Subgraphs(0)
    out = Counter()
    for i in range(g.OperatorsLength()):
        oc = m.OperatorCodes(g.Operators(i).OpcodeIndex())
        out[names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]] += 1
    return out


def test_blazeface_tflite_calibration_matches_st_compile(tflite_models):
    path = tflite_models["blazeface_int8"]
    assert _tflite_op_counts(path) == ST_BLAZEFACE_OPS  # the same op structure as ST's model
    rep = lint_model(path, **ST_IO)
    assert rep.format == "tflite"
    assert rep.mapping.epochs == ST_BLAZEFACE_EPOCHS and rep.mapping.exact
    assert rep.summary["errors"] == 0
    assert fired(rep) == {"channel-pad"}
    # the file's own float outputs (stedgeai without --output-data-type): 4 software Dequantize
    dflt = lint_model(path)
    e = dflt.mapping.epochs  # (the head Dequantizes split hw runs in file order: hw >= 23)
    assert e["sw"] == 4 and e["hybrid"] == 22 and e["hw"] >= 23
    assert fired(dflt) == {"channel-pad", "float-io"}
    assert rep.params == BLAZEFACE_PARAMS
    assert rep.macc == blazeface_macc()
    assert 100 * 1024 < rep.weights_bytes < 110 * 1024


def test_tflite_float16_and_dynamic_range_fail(tflite_models):
    assert "float16" in fired(lint_model(tflite_models["small_fp16"]))
    dyn = lint_model(tflite_models["small_dynamic"])
    # int8 weights on float activations: its own finding, not "a float model"
    assert fired(dyn) == {"dynamic-range"} and dyn.exit_code() == 1
    hit = [f for f in dyn.findings if f.rule == "dynamic-range"][0]
    assert "full-integer" in hit.hint and "1 operator(s)" in hit.message
    assert "dynamic-range" not in fired(lint_model(tflite_models["small_int8"]))
    assert "float-model" in fired(lint_model(tflite_models["small_fp32"]))
    clean = lint_model(tflite_models["small_int8"], output_data_type="int8")
    assert clean.summary["errors"] == 0 and clean.mapping.epochs["sw"] == 0


def test_mediapipe_float16_tflite_fails():
    from blazeear_edge.weights import mediapipe_tflite_path

    try:
        path = mediapipe_tflite_path()
    except BlazeEarError as exc:
        pytest.skip(str(exc))
    rep = lint_model(path)
    assert "float16" in fired(rep) and "float-model" in fired(rep)
    assert rep.params == BLAZEFACE_PARAMS  # MediaPipe's float16 weights, read from the file
    assert rep.macc == blazeface_macc()


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def test_cli_exit_codes_and_strict(run_cli, clean_qdq, qdir):
    ok = run_cli("lint", clean_qdq, "--output-data-type", "int8")
    assert ok.code == 0, ok.err
    assert "0 error(s)" in ok.out and "epochs = 1 hw + 0 hybrid + 0 sw" in ok.out
    assert "output int8" in ok.out and "epoch controller on" in ok.out  # the mode counted
    assert run_cli("lint", clean_qdq, "--output-data-type", "int8", "--strict").code == 0
    assert run_cli("lint", clean_qdq, "--strict").code == 1  # the float-io warning
    bad = qdir / "nms.onnx"
    onnx.save(m_nms(), bad)
    r = run_cli("lint", bad)
    assert r.code == 1 and "unsupported-op" in r.out and "NonMaxSuppression" in r.out
    maybe = qdir / "topk.onnx"
    onnx.save(m_topk(), maybe)
    r = run_cli("lint", maybe)
    assert r.code == 0 and "maybe-unsupported-op" in r.out and "TopK" in r.out


def test_cli_json_schema(run_cli, blazeface_qdq):
    r = run_cli("lint", blazeface_qdq["pad"], "--format", "json", "--input-data-type", "uint8",
                "--output-data-type", "int8")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert tuple(d) == JSON_KEYS
    assert d["format"] == "onnx" and d["target"] == "stm32n6"
    assert d["summary"] == {"errors": 0, "warnings": 11}  # the 11 channel pads
    assert set(d["findings"][0]) == {"rule", "severity", "node", "op", "message", "hint",
                                     "source"}
    assert set(d["mapping"]) == {"epochs", "epochs_range", "exact", "mode", "ops"}
    assert d["mapping"]["epochs"] == ST_BLAZEFACE_EPOCHS
    assert d["mapping"]["mode"] == {"input_data_type": "uint8", "output_data_type": "int8",
                                    "epoch_controller": True, "source": "command line",
                                    "version": None}
    assert set(d["mapping"]["ops"][0]) == {"node", "op", "unit", "rule"}
    assert set(d["footprint"]) == {"weights_bytes", "weights_st_image_band_bytes",
                                   "activations_lower_bound_bytes", "ram_pools_estimate_bytes",
                                   "ram_pools_band_bytes"}
    lo, hi = d["footprint"]["ram_pools_band_bytes"]
    assert lo < d["footprint"]["ram_pools_estimate_bytes"] < hi
    assert d["footprint"]["activations_lower_bound_bytes"] == d["activations_peak_bytes"]
    assert {o["unit"] for o in d["mapping"]["ops"]} == {"hw", "hybrid"}
    assert d["params"] == BLAZEFACE_PARAMS and d["macc"] == blazeface_macc()
    assert all(isinstance(d[k], int) for k in ("macc", "params", "weights_bytes",
                                              "activations_peak_bytes"))


def _bad_files(tmp: Path, good: Path) -> list[Path]:
    rnd = tmp / "random.onnx"
    rnd.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    rnd_t = tmp / "random.tflite"
    rnd_t.write_bytes(b"\x1c\x00\x00\x00TFL3" + rnd.read_bytes()[:200])
    empty = tmp / "empty.onnx"
    empty.write_bytes(b"")
    trunc = tmp / "truncated.onnx"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    folder = tmp / "a_folder.onnx"
    folder.mkdir(exist_ok=True)
    return [rnd, rnd_t, empty, trunc, folder, tmp / "missing.onnx"]


def test_cli_unreadable_inputs_exit_2_with_one_line(run_cli, qdir, blazeface_qdq, tflite_models):
    files = _bad_files(qdir, blazeface_qdq["pad"])
    t = tflite_models["small_int8"]
    trunc_t = qdir / "truncated.tflite"
    trunc_t.write_bytes(t.read_bytes()[: t.stat().st_size // 2])
    for f in files + [trunc_t]:
        r = run_cli("lint", f)
        assert r.code == 2, (f, r.out, r.err)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and str(f) in lines[0], (f, r.err)
        assert "Traceback" not in r.err


def test_cli_subprocess_entry_point(clean_qdq, qdir):
    bad = qdir / "garbage.onnx"
    bad.write_bytes(b"not a model at all")
    r = subprocess.run([sys.executable, "-m", "blazeear_edge", "lint", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and str(bad) in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "blazeear_edge", "lint", str(clean_qdq),
                        "--format", "json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and json.loads(r.stdout)["summary"]["errors"] == 0


def test_unknown_target_is_a_user_error(clean_qdq):
    with pytest.raises(BlazeEarError):
        lint_model(clean_qdq, target="stm32h7")


def test_rule_table_is_complete():
    for r in RULES.values():
        assert r.severity in ("error", "warning", "info")
        assert r.message and r.hint and r.source
    # every error rule in the table has a firing case in this file
    errors = {r.id for r in RULES.values() if r.severity == "error"}
    assert errors - set(ERROR_CASES) == {"qoperator", "onnx-uint8",
                                         "dynamic-range"}  # own tests
    # no rule is both: each former error is either kept (with its source) or demoted
    assert not set(DEMOTED_CASES) & errors
    assert all(RULES[r].severity == "warning" for r in DEMOTED_CASES)


def test_st_2x_weight_image_rule():
    """ST Edge AI 2.x flash image (footprint.ST_IMAGE_RULES, read from ST's generated
    face_detector.c / face_landmark.c / palm_detector.c): no int32 conv biases, 3x3 depthwise
    kernels with C % factor == 0 stored factor x (8 for TFLite, 4 for ONNX); 5x5 depthwise and
    other channel counts as-is; other versions keep the payload."""
    from blazeear_edge.lint.footprint import st_weight_image_bytes
    from blazeear_edge.lint.graph import Graph, Node, Tensor
    from blazeear_edge.lint.options import parse_stedgeai_command, parse_version

    def const(name, shape, dtype="int8"):
        return Tensor(name, dtype, shape, const=True, data=np.zeros(shape, dtype=dtype))

    def graph(fmt):
        t, nodes = {}, []
        # (channels, k): 16 ch 3x3 (inflated), 12 ch 3x3 (kept: 12 % 8), 16 ch 5x5 (kept)
        for i, (c, k) in enumerate([(16, 3), (12, 3), (16, 5)]):
            w = (1, k, k, c) if fmt == "tflite" else (c, 1, k, k)
            t[f"w{i}"], t[f"b{i}"] = const(f"w{i}", w), const(f"b{i}", (c,), "int32")
            attrs = {"depthwise": True, "kernel": (k, k)}  # as both readers set them
            if fmt == "onnx":
                attrs["group"] = c
            nodes.append(Node(f"dw{i}", "DEPTHWISE_CONV_2D", "Conv", [f"x{i}", f"w{i}", f"b{i}"],
                              [f"x{i + 1}"], attrs))
        t["pw"], t["pb"] = const("pw", (32, 1, 1, 16)), const("pb", (32,), "int32")
        nodes.append(Node("pw", "CONV_2D", "Conv", ["x3", "pw", "pb"], ["y"], {}))
        layout = "NHWC" if fmt == "tflite" else "NCHW"
        return Graph("m", fmt, layout, nodes, t, ["x0"], ["y"])

    g = graph("tflite")
    payload = 16 * 9 + 12 * 9 + 16 * 25 + 32 * 16 + 4 * (16 + 12 + 16 + 32)
    assert st_weight_image_bytes(g, payload, None) == payload
    assert st_weight_image_bytes(g, payload, "4.0") == payload
    want = payload - 4 * (16 + 12 + 16 + 32) + 7 * 16 * 9
    assert st_weight_image_bytes(g, payload, "2.1") == want
    assert st_weight_image_bytes(g, payload, "ST Edge AI Core 2.2") == want
    go = graph("onnx")  # ONNX: 4x, and 12 % 4 == 0 is inflated too
    assert st_weight_image_bytes(go, payload, "2.2") == \
        payload - 4 * (16 + 12 + 16 + 32) + 3 * (16 * 9 + 12 * 9)
    assert parse_version("ST Edge AI Core 4.0 branch (STAI-3.0.0-254)") == (4, 0)
    assert parse_version("v2.1.0-20182") == (2, 1) and parse_version("latest") is None
    opts = parse_stedgeai_command("stedgeai generate -m m.tflite", version="ST Edge AI Core 2.1")
    assert opts.version == "2.1" and "ST Edge AI 2.1" in opts.describe()
    with pytest.raises(BlazeEarError):
        parse_stedgeai_command("stedgeai generate -m m.tflite", version="latest")


def test_st_channel_tables_in_weight_image():
    """ST's per-channel mul_scale / off_bias tables (footprint.st_channel_table_bytes, read from
    movenet's network.c 4.0 and face_landmark.c 2.2): a convolution with more than 512 output
    channels stores 2 FXP16 tensors of W_out x C_out values, in every version; 384 channels and
    fewer store none."""
    from blazeear_edge.lint.footprint import st_channel_table_bytes, st_weight_image_bytes
    from blazeear_edge.lint.graph import Graph, Node, Tensor

    def const(name, shape, dtype="int8"):
        return Tensor(name, dtype, shape, const=True, data=np.zeros(shape, dtype=dtype))

    def act(name, shape):
        return Tensor(name, "int8", shape)

    t = {"x": act("x", (1, 12, 12, 96))}
    nodes = []
    # 96 -> 576 1x1 at 12x12 (tables, W 12), 576 depthwise stride 2 -> 6x6 (tables, W 6),
    # 576 -> 384 1x1 (none: 384 channels), 384 -> 936 to 1x1 (tables, W 1, no activation needed)
    for i, (kind, wshape, out) in enumerate([
            ("CONV_2D", (576, 1, 1, 96), (1, 12, 12, 576)),
            ("DEPTHWISE_CONV_2D", (1, 3, 3, 576), (1, 6, 6, 576)),
            ("CONV_2D", (384, 1, 1, 576), (1, 6, 6, 384)),
            ("CONV_2D", (936, 6, 6, 384), (1, 1, 1, 936))]):
        src = "x" if i == 0 else f"y{i - 1}"
        t[f"w{i}"], t[f"y{i}"] = const(f"w{i}", wshape), act(f"y{i}", out)
        attrs = {"depthwise": kind == "DEPTHWISE_CONV_2D",  # as the TFLite reader sets them
                 "kernel": (wshape[1], wshape[2])}
        nodes.append(Node(f"c{i}", kind, "Conv", [src, f"w{i}"], [f"y{i}"], attrs))
    g = Graph("m", "tflite", "NHWC", nodes, t, ["x"], ["y3"])
    want = 2 * 2 * (12 * 576 + 6 * 576 + 1 * 936)
    assert want == 2 * 13824 + 2 * 6912 + 2 * 1872  # movenet's / face_landmark's buffer sizes
    assert st_channel_table_bytes(g) == want
    assert st_weight_image_bytes(g, 1000, None) == 1000 + want
    assert st_weight_image_bytes(g, 1000, "4.0") == 1000 + want
    # 2.x: no biases here, the stride-2 depthwise 3x3 (576 % 8 == 0) is inflated 8x, plus tables
    assert st_weight_image_bytes(g, 1000, "2.1") == 1000 + 7 * 9 * 576 + want
    # ONNX layout (NCHW): channels on axis 1, width on axis 3
    go = Graph("m", "onnx", "NCHW", [Node("c", "Conv", "Conv", ["x", "w"], ["y"], {})],
               {"x": act("x", (1, 96, 12, 12)), "w": const("w", (576, 96, 1, 1)),
                "y": act("y", (1, 576, 12, 12))}, ["x"], ["y"])
    assert st_channel_table_bytes(go) == 4 * 12 * 576


def test_st_version_option_reaches_the_weight_estimate(qdir, clean_qdq):
    """``lint_model(st_version=...)`` / ``--st-version``: only the weight image changes."""
    base = lint_model(clean_qdq)
    old = lint_model(clean_qdq, st_version="2.2")
    assert old.mapping.options.version == "2.2" and base.mapping.options.version is None
    assert old.mapping.epochs == base.mapping.epochs
    assert lint_model(clean_qdq, st_version="4.0").weights_bytes == base.weights_bytes
    with pytest.raises(BlazeEarError):
        lint_model(clean_qdq, st_version="new")
