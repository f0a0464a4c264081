"""One test per placement rule of ``lint`` (``blazeear_edge.lint.placement.PLACEMENT_RULES``), on
small graphs built here in ONNX and, where the converter can make them, in int8 TFLite; the stedgeai
options (``--input-data-type``, ``--output-data-type``, ``--no-epoch-controller``), their parser and
the manifest line; and a fixed-seed fuzz test: damaged int8 ONNX and TFLite files must end in one
line and exit status 2, never a traceback and never exit 1.

The expected counts come from ST's generated code for the STM32N6 as described in
``../shared/docs/st-n6-compiles.md`` (each rule's source is in the rule table), not from the
linter's output.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from blazeear_edge.errors import BlazeEarError  # noqa: E402
from blazeear_edge.lint import (PLACEMENT_RULES, StedgeaiOptions, lint_model,  # noqa: E402
                                options_from_manifest, parse_stedgeai_command)

INT_OUT = {"output_data_type": "int8"}


def model(nodes, x_shape, y_shape, inits=(), outputs=None, opset=17):
    outs = outputs or [("y", y_shape)]
    g = oh.make_graph(nodes, "t", [oh.make_tensor_value_info("x", TP.FLOAT, x_shape)],
                      [oh.make_tensor_value_info(n, TP.FLOAT, s) for n, s in outs],
                      [nh.from_array(np.asarray(v), k) for k, v in inits])
    m = oh.make_model(g, opset_imports=[oh.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def w(*shape, seed=0):
    return np.random.default_rng(seed).normal(0, 0.1, shape).astype(np.float32)


def conv(x, y, name, cin, cout, k=1, **attrs):
    return (oh.make_node("Conv", [x, f"{name}_w"], [y], name, kernel_shape=[k, k], **attrs),
            (f"{name}_w", w(cout, cin // attrs.get("group", 1), k, k)))


def chain(*convs):
    return [c[0] for c in convs], [c[1] for c in convs]


def as_int8(m, **kw):
    """The float graph placed as once quantised (the rule under test, no I/O conversions)."""
    return lint_model(m, assume_int8=True, **kw)


def rules(rep) -> list:
    return [p.rule for p in rep.mapping.ops]


def quantize(m, tmp_path, name):
    """onnxruntime's QDQ quantisation (ST's settings) on random calibration data."""
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    src, dst = tmp_path / f"{name}_fp32.onnx", tmp_path / f"{name}.onnx"
    onnx.save(m, src)
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.data = [{"x": rng.uniform(-1, 1, shape).astype(np.float32)} for _ in range(2)]

        def get_next(self):
            return self.data.pop() if self.data else None

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
    return dst


# ---------------------------------------------------------------------------------------------
# placement rules, ONNX
# ---------------------------------------------------------------------------------------------
def test_rule_table_has_sources():
    for rid, (what, source) in PLACEMENT_RULES.items():
        assert what and source, rid
        assert source.startswith(("[ST]", "[users]", "blazeear-edge")), rid


def test_neg_is_hardware():
    a = conv("x", "c", "c1", 4, 4)
    m = model([a[0], oh.make_node("Neg", ["c"], ["y"], "neg")], (1, 4, 8, 8), (1, 4, 8, 8),
              [a[1]])
    rep = as_int8(m)
    assert rep.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 0}
    assert rep.mapping.ops[1].unit == "hw" and "unknown-op" not in {f.rule for f in rep.findings}


@pytest.mark.parametrize("op", ["DepthToSpace", "SpaceToDepth"])
def test_depth_space_is_hybrid_not_software(op):
    a, b = conv("x", "c", "c1", 4, 4), conv("d", "y", "c2", *((1, 4) if op == "DepthToSpace"
                                                              else (16, 4)))
    mid = (1, 1, 16, 16) if op == "DepthToSpace" else (1, 16, 4, 4)
    m = model([a[0], oh.make_node(op, ["c"], ["d"], "ds", blocksize=2), b[0]], (1, 4, 8, 8),
              (1, 4) + mid[2:], [a[1], b[1]])
    rep = as_int8(m)
    assert rules(rep) == ["hw", "depth-space", "hw"]
    assert rep.mapping.epochs == {"hw": 2, "hybrid": 1, "sw": 0}


def test_dilated_conv_is_space_to_depth_hw_depth_to_space():
    a = conv("x", "c", "c1", 4, 4)
    b = conv("c", "d", "dil", 4, 4, k=3, dilations=[2, 2], pads=[2, 2, 2, 2])
    c = conv("d", "y", "c3", 4, 4)
    rep = as_int8(model(*chain(a, b, c)[:1], (1, 4, 8, 8), (1, 4, 8, 8), chain(a, b, c)[1]))
    assert rules(rep) == ["hw", "dilated-conv", "hw"]
    assert rep.mapping.ops[1].epochs == ("hybrid", "hw", "hybrid")
    assert rep.mapping.epochs == {"hw": 3, "hybrid": 2, "sw": 0}
    plain = conv("c", "d", "dil", 4, 4, k=3, pads=[1, 1, 1, 1])  # no dilation: one hw run
    assert as_int8(model(*chain(a, plain, c)[:1], (1, 4, 8, 8), (1, 4, 8, 8),
                         chain(a, plain, c)[1])).mapping.epochs == {"hw": 1, "hybrid": 0,
                                                                     "sw": 0}


def test_whole_input_strided_conv_gets_a_space_to_depth():
    a = conv("x", "y", "last", 8, 16, k=3, strides=[3, 3])
    rep = as_int8(model([a[0]], (1, 8, 3, 3), (1, 16, 1, 1), [a[1]]))
    assert rules(rep) == ["whole-input-conv"] and rep.mapping.ops[0].epochs == ("hybrid", "hw")
    b = conv("x", "y", "last", 8, 16, k=3, strides=[3, 3])  # same conv on a larger input: hw
    assert rules(as_int8(model([b[0]], (1, 8, 6, 6), (1, 16, 2, 2), [b[1]]))) == ["hw"]


def test_conv_on_a_single_element_is_software():
    a = conv("x", "y", "gate", 1, 16)
    rep = as_int8(model([a[0]], (1, 1, 1, 1), (1, 16, 1, 1), [a[1]]))
    assert rules(rep) == ["conv-single-element"]
    assert rep.mapping.epochs == {"hw": 0, "hybrid": 0, "sw": 1}
    b = conv("x", "y", "gate", 2, 16)  # two elements: hardware (OSNet's 2 -> 32 stays hw)
    assert rules(as_int8(model([b[0]], (1, 2, 1, 1), (1, 16, 1, 1), [b[1]]))) == ["hw"]


@pytest.mark.parametrize("mode,scale,rule,steps", [
    ("nearest", 2, "resize-nearest-x2", ("hw", "hybrid")),
    ("nearest", 3, "resize-nearest", ("hw",)),
    ("linear", 2, "software-op", ("sw",)),
])
def test_resize_placement(mode, scale, rule, steps):
    n = oh.make_node("Resize", ["x", "", "scales"], ["y"], "up", mode=mode)
    m = model([n], (1, 4, 8, 8), (1, 4, 8 * scale, 8 * scale),
              [("scales", np.array([1, 1, scale, scale], np.float32))])
    rep = as_int8(m)
    assert rules(rep) == [rule] and rep.mapping.ops[0].epochs == steps


def test_matmul_gemm_placement():
    """A product with a constant operand runs on the NPU; one of two activations does not."""
    const = model([oh.make_node("MatMul", ["x", "k"], ["y"], "mm")], (1, 8, 16), (1, 8, 4),
                  [("k", w(16, 4))])
    assert [p.unit for p in as_int8(const).mapping.ops] == ["hw"]
    two = model([oh.make_node("Transpose", ["x"], ["t"], "tr", perm=[0, 2, 1]),
                 oh.make_node("MatMul", ["x", "t"], ["y"], "mm")], (1, 8, 16), (1, 8, 8))
    rep = as_int8(two)
    mm = [p for p in rep.mapping.ops if p.op == "MatMul"][0]
    assert mm.unit == "sw" and mm.rule == "software-op" and rep.mapping.epochs["sw"] == 1
    assert "software-op" in {f.rule for f in rep.findings}
    gemm = model([oh.make_node("Gemm", ["x", "b"], ["y"], "fc", transB=1)], (1, 16), (1, 4),
                 [("b", w(4, 16))])
    assert [p.unit for p in as_int8(gemm).mapping.ops] == ["hw"]
    gemm2 = model([oh.make_node("Gemm", ["x", "x"], ["y"], "fc", transB=1)], (1, 16), (1, 1))
    assert [p.unit for p in as_int8(gemm2).mapping.ops] == ["sw"]


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceMax"])
def test_reduce_placement(op):
    spatial = model([oh.make_node(op, ["x"], ["y"], "r", axes=[2, 3], keepdims=1)],
                    (1, 4, 8, 8), (1, 4, 1, 1), opset=17 if op == "ReduceMax" else 17)
    if op == "ReduceMean":
        assert [p.unit for p in as_int8(spatial).mapping.ops] == ["hw"]
    chan = model([oh.make_node(op, ["x"], ["y"], "r", axes=[1], keepdims=1)], (1, 4, 8, 8),
                 (1, 1, 8, 8))
    assert [p.unit for p in as_int8(chan).mapping.ops] == ["sw"]
    assert [p.unit for p in as_int8(spatial).mapping.ops] == ["hw"]


def _pad(cin, cout):
    pads = np.array([0, 0, 0, 0, 0, cout - cin, 0, 0], np.int64)
    a = conv("x", "c", "c1", cin, cin)
    b = conv("p", "y", "c2", cout, cout)
    return model([a[0], oh.make_node("Pad", ["c", "pads"], ["p"], "pad"), b[0]], (1, cin, 8, 8),
                 (1, cout, 8, 8), [a[1], b[1], ("pads", pads)])


def test_small_channel_pad_is_exactly_two_hybrid():
    rep = as_int8(_pad(24, 28))
    assert rules(rep) == ["hw", "channel-pad", "hw"]
    assert rep.mapping.epochs == {"hw": 3, "hybrid": 2, "sw": 0} and rep.mapping.exact


def _pad_at(cin, cout, hw):
    pads = np.array([0, 0, 0, 0, 0, cout - cin, 0, 0], np.int64)
    a = conv("x", "c", "c1", cin, cin)
    b = conv("p", "y", "c2", cout, cout)
    return model([a[0], oh.make_node("Pad", ["c", "pads"], ["p"], "pad"), b[0]],
                 (1, cin, hw, hw), (1, cout, hw, hw), [a[1], b[1], ("pads", pads)])


@pytest.mark.parametrize("width, epochs", [
    (48, {"hw": 2, "hybrid": 1, "sw": 0}),  # face_landmarks' first pad: Transpose_82 before it
    (24, {"hw": 1, "hybrid": 0, "sw": 0}),  # its 2nd and 3rd: Pad_*_pad_kern, all in hw
    (12, {"hw": 1, "hybrid": 0, "sw": 0})])
def test_doubling_channel_pad_onnx(width, epochs):
    """Channels-first (ONNX) doubling pad: hybrid transpose before it only on wide tensors,
    none after (x-cube-n6-ai-face-landmarks, face_landmark.c); the range stays 0..2."""
    rep = as_int8(_pad_at(16, 32, width))
    assert rules(rep) == ["hw", "channel-pad-doubling", "hw"]
    assert rep.mapping.epochs == epochs and not rep.mapping.exact
    assert rep.mapping.epochs_range["hybrid"] == [0, 2]
    assert "range" in rep.format_text() and "or " in rep.format_text(show_ops=True)


def test_small_pad_is_not_doubling_at_any_width():
    for width in (12, 48):  # BlazeFace: +4..+8 channels cost 2 hybrid at every width
        rep = as_int8(_pad_at(24, 28, width))
        assert rep.mapping.epochs == {"hw": 3, "hybrid": 2, "sw": 0} and rep.mapping.exact


def _concat_model():
    a, b = conv("x", "c1", "c1", 4, 4), conv("x", "c2", "c2", 4, 2)
    return model([a[0], b[0], oh.make_node("Concat", ["c1", "c2"], ["y"], "cat", axis=1)],
                 (1, 4, 8, 8), (1, 6, 8, 8), [a[1], b[1]])


def test_concat_feeding_a_float_output_is_hybrid(tmp_path):
    q = quantize(_concat_model(), tmp_path, "cat")
    flt = lint_model(q)  # stedgeai default: the file's float output
    assert rules(flt)[-2:] == ["concat-float-output", "output-dequantize"]
    assert flt.mapping.epochs == {"hw": 1, "hybrid": 1, "sw": 1}
    i8 = lint_model(q, **INT_OUT)  # integer output: the Concat stays in hardware
    assert i8.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 0}


def test_head_transpose_of_a_float_input_is_hybrid_and_its_quantize_absorbed(tmp_path):
    a = conv("t", "y", "c1", 4, 4)
    m = model([oh.make_node("Transpose", ["x"], ["t"], "to_nchw", perm=[0, 3, 1, 2]), a[0]],
              (1, 8, 8, 4), (1, 4, 8, 8), [a[1]])
    q = quantize(m, tmp_path, "head")
    rep = lint_model(q, **INT_OUT)
    assert [(p.op, p.rule) for p in rep.mapping.ops][:2] == [("Transpose", "head-transpose"),
                                                              ("QuantizeLinear", "input-quantize")]
    assert rep.mapping.epochs == {"hw": 1, "hybrid": 1, "sw": 0}  # yamnet: 1 hybrid, no float op
    flt_in = lint_model(q, input_data_type="float32", **INT_OUT)  # float input kept: software
    assert flt_in.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 2}


def test_output_conversion_added_for_float32_on_an_integer_output(tmp_path):
    rep = lint_model(quantize(_concat_model(), tmp_path, "cat2"), output_data_type="float32")
    assert rep.mapping.epochs["sw"] == 1  # the stored DequantizeLinear, now asked for
    assert {f.rule for f in rep.findings} >= {"float-io"}


def test_no_epoch_controller_counts_scheduler_epochs():
    convs = [conv("x" if i == 0 else f"c{i - 1}", f"c{i}" if i < 9 else "y", f"k{i}", 4, 4)
             for i in range(10)]
    m = model(*chain(*convs)[:1], (1, 4, 8, 8), (1, 4, 8, 8), chain(*convs)[1])
    ec = as_int8(m)
    assert ec.mapping.epochs["hw"] == 1  # one EC blob
    no_ec = as_int8(m, epoch_controller=False)
    assert no_ec.mapping.epochs["hw"] == 12  # 1.2 x 10 compute operators
    assert no_ec.mapping.epochs_range["hw"] == [10, 14]
    assert "no epoch controller" in no_ec.format_text()


# ---------------------------------------------------------------------------------------------
# placement rules, int8 TFLite (the TF Lite converter)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tflite_rules(tmp_path_factory):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    out_dir = tmp_path_factory.mktemp("lint_tfl")

    def k(*shape):
        return tf.constant(rng.normal(0, 0.1, shape).astype(np.float32))

    spec = [tf.TensorSpec((1, 8, 8, 4), tf.float32)]

    @tf.function(input_signature=spec)
    def dilated(x):
        h = tf.nn.conv2d(x, k(1, 1, 4, 4), 1, "SAME")
        h = tf.nn.conv2d(h, k(3, 3, 4, 4), 1, "SAME", dilations=2)
        return tf.nn.conv2d(h, k(1, 1, 4, 4), 1, "SAME")

    @tf.function(input_signature=spec)
    def upsample(x):
        h = tf.nn.conv2d(x, k(1, 1, 4, 4), 1, "SAME")
        return tf.image.resize(h, (16, 16), method="nearest")

    def doubling_pad(width):
        @tf.function(input_signature=[tf.TensorSpec((1, width, width, 4), tf.float32)])
        def f(x):
            h = tf.nn.conv2d(x, k(1, 1, 4, 4), 1, "SAME")
            h = tf.pad(h, [[0, 0], [0, 0], [0, 0], [0, 4]])
            return tf.nn.conv2d(h, k(1, 1, 8, 8), 1, "SAME")
        f.__name__ = f"doubling_pad_{width}"
        return f

    @tf.function(input_signature=spec)
    def d2s(x):
        h = tf.nn.conv2d(x, k(1, 1, 4, 8), 1, "SAME")
        return tf.nn.depth_to_space(h, 2)

    def convert(fn):
        c = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        shape = fn.input_signature[0].shape
        c.representative_dataset = lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)]
                                            for _ in range(2))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        p = out_dir / f"{fn.__name__}.tflite"
        p.write_bytes(c.convert())
        return p

    fns = (dilated, upsample, d2s, doubling_pad(48), doubling_pad(24))
    return {f.__name__: convert(f) for f in fns}


def test_tflite_dilated_conv(tflite_rules):
    rep = lint_model(tflite_rules["dilated"], **INT_OUT)
    dil = [p for p in rep.mapping.ops if p.rule == "dilated-conv"]
    if not dil:  # some converter versions lower dilation to SPACE_TO_BATCH_ND ... around CONV
        pytest.skip("the converter did not keep the dilation on CONV_2D")
    assert dil[0].epochs == ("hybrid", "hw", "hybrid")
    assert rep.mapping.epochs == {"hw": 3, "hybrid": 2, "sw": 0}


def test_tflite_nearest_resize_x2(tflite_rules):
    rep = lint_model(tflite_rules["upsample"], **INT_OUT)
    assert "resize-nearest-x2" in rules(rep)
    assert rep.mapping.epochs == {"hw": 1, "hybrid": 1, "sw": 0}  # yolo_x: hw + DepthToSpace


@pytest.mark.parametrize("width, epochs", [
    (48, {"hw": 3, "hybrid": 2, "sw": 0}),  # palm's first pad: transposes before and after
    (24, {"hw": 2, "hybrid": 1, "sw": 0})])  # its 2nd and 3rd: the transpose after only
def test_tflite_doubling_channel_pad(tflite_rules, width, epochs):
    """Channels-last (TFLite) doubling pad (x-cube-n6-ai-hand-landmarks, palm_detector.c)."""
    rep = lint_model(tflite_rules[f"doubling_pad_{width}"], **INT_OUT)
    pads = [p for p in rep.mapping.ops if p.rule == "channel-pad-doubling"]
    assert len(pads) == 1
    assert rep.mapping.epochs == epochs and not rep.mapping.exact
    assert rep.mapping.epochs_range["hybrid"] == [0, 2]


def test_tflite_depth_to_space_and_float_output(tflite_rules):
    i8 = lint_model(tflite_rules["d2s"], **INT_OUT)
    assert "depth-space" in rules(i8) and i8.mapping.epochs == {"hw": 1, "hybrid": 1, "sw": 0}
    flt = lint_model(tflite_rules["d2s"])  # the file stores a float output: 1 sw Dequantize
    assert flt.mapping.epochs == {"hw": 1, "hybrid": 1, "sw": 1}


# ---------------------------------------------------------------------------------------------
# options: parser, manifest line, CLI
# ---------------------------------------------------------------------------------------------
def test_parse_stedgeai_command():
    o = parse_stedgeai_command("stedgeai generate --model m.tflite --target stm32n6 "
                               "--input-data-type uint8 --output-data-type=int8")
    assert (o.input_data_type, o.output_data_type, o.epoch_controller) == ("uint8", "int8", True)
    o = parse_stedgeai_command("stedgeai generate -m m.onnx", "-O3 --Oauto-sched")
    assert (o.input_data_type, o.output_data_type, o.epoch_controller) == (None, None, False)
    assert parse_stedgeai_command("x", "--enable-epoch-controller -O3").epoch_controller
    with pytest.raises(BlazeEarError, match="float64"):
        parse_stedgeai_command("stedgeai generate --output-data-type float64")
    with pytest.raises(BlazeEarError):
        StedgeaiOptions(input_data_type="int4")


def test_lint_reads_the_manifest_line(tmp_path):
    src = quantize(_concat_model(), tmp_path, "cat")
    exp = tmp_path / "export"
    exp.mkdir()
    f = exp / "m_int8.onnx"
    f.write_bytes(src.read_bytes())
    assert options_from_manifest(f) is None and lint_model(f).mapping.epochs["sw"] == 1
    man = {"stedgeai": {"generate": "stedgeai generate --model m_int8.tflite",
                        "generate_onnx": "stedgeai generate --model m_int8.onnx --target stm32n6 "
                                         "--input-data-type uint8 --output-data-type int8",
                        "note": "text", "odd": ["not", "a", "line"]}}
    (exp / "manifest.json").write_text(json.dumps(man))
    o = options_from_manifest(f)
    assert o.output_data_type == "int8" and "generate_onnx" in o.source
    rep = lint_model(f)
    assert rep.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 0}
    assert "generate_onnx" in rep.format_text()
    # explicit options win over the manifest's
    assert lint_model(f, output_data_type="float32").mapping.epochs["sw"] == 1
    for bad in ("[1, 2]", "{not json", '{"stedgeai": "a string"}', '{"stedgeai": null}'):
        (exp / "manifest.json").write_text(bad)  # another manifest version: ignored, not fatal
        assert lint_model(f).mapping.options.source == "defaults"


def test_cli_options(run_cli, tmp_path):
    q = quantize(_concat_model(), tmp_path, "cat")
    r = run_cli("lint", q, "--format", "json", "--no-epoch-controller",
                "--output-data-type", "uint8")
    assert r.code == 0, r.err
    mode = json.loads(r.out)["mapping"]["mode"]
    assert mode["epoch_controller"] is False and mode["output_data_type"] == "uint8"
    r = run_cli("lint", q, "--stedgeai", "stedgeai generate --model q.onnx --input-data-type "
                "float32 --output-data-type int8")
    assert r.code == 0 and "input float32" in r.out and "1 sw" in r.out
    r = run_cli("lint", q, "--stedgeai", "stedgeai generate --output-data-type float16")
    assert r.code == 2 and "float16" in r.err and len(r.err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# damaged files: fixed-seed fuzz
# ---------------------------------------------------------------------------------------------
def _mutants(data: bytes, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for i in range(n):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:  # bit flips
            for pos in rng.integers(0, len(b), int(rng.integers(1, 16))):
                b[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:  # truncation
            b = b[: int(rng.integers(1, len(b)))]
        elif kind == 2:  # a zeroed range
            a = int(rng.integers(0, len(b)))
            end = min(len(b), a + int(rng.integers(1, 256)))
            b[a:end] = bytes(end - a)
        else:  # a range spliced from elsewhere in the file
            a, c = (int(v) for v in rng.integers(0, len(b), 2))
            size = int(rng.integers(1, 128))
            b[a: a + size] = data[c: c + size]
        yield bytes(b)


@pytest.fixture(scope="module")
def fuzz_seeds(tmp_path_factory, tflite_rules):
    tmp = tmp_path_factory.mktemp("fuzz_seed")
    a, b = conv("x", "c", "c1", 4, 8, k=3, pads=[1, 1, 1, 1]), conv("r", "y", "c2", 8, 4)
    m = model([a[0], oh.make_node("Relu", ["c"], ["r"], "relu"), b[0]], (1, 4, 8, 8),
              (1, 4, 8, 8), [a[1], b[1]])
    return {"onnx": quantize(m, tmp, "fuzz"), "tflite": tflite_rules["d2s"]}


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_damaged_models_never_crash(fmt, fuzz_seeds, tmp_path):
    """200 mutants per format: each lints (exit 0/1) or is a one-line error naming the file
    (BlazeEarError, exit 2); no other exception escapes."""
    from blazeear_edge.cli import main

    data = fuzz_seeds[fmt].read_bytes()
    outcomes = {"ok": 0, "bad-input": 0}
    for i, mutant in enumerate(_mutants(data, 200, seed=12 if fmt == "onnx" else 13)):
        p = tmp_path / f"m{i}.{fmt}"
        p.write_bytes(mutant)
        try:
            lint_model(p)
            outcomes["ok"] += 1
        except BlazeEarError as exc:
            msg = str(exc)
            assert str(p) in msg and "\n" not in msg and exc.exit_code == 2, msg
            outcomes["bad-input"] += 1
    assert outcomes["bad-input"] > 0  # the mutations do damage
    # the command line on a sample: exit 2 and one line on stderr, never a traceback or exit 1
    for i in range(0, 200, 25):
        p = tmp_path / f"m{i}.{fmt}"
        try:
            lint_model(p)
            continue
        except BlazeEarError:
            pass
        assert main(["lint", str(p)]) == 2


def test_damaged_manifest_never_crashes_lint(tmp_path):
    """200 mutants of an export manifest beside the model: lint uses its line, falls back to the
    defaults, or stops with one line naming the manifest (exit 2); nothing else."""
    src = quantize(_concat_model(), tmp_path, "cat")
    exp = tmp_path / "export"
    exp.mkdir()
    f = exp / "m_int8.onnx"
    f.write_bytes(src.read_bytes())
    text = json.dumps({"schema": "blazeear-edge/manifest/1", "stedgeai": {
        "generate": "stedgeai generate --model m_int8.onnx --input-data-type uint8 "
                    "--output-data-type int8 --c-api st-ai", "note": "x"}}, indent=1).encode()
    seen = set()
    for i, mutant in enumerate(_mutants(text, 200, seed=21)):
        (exp / "manifest.json").write_bytes(mutant)
        try:
            seen.add(lint_model(f).mapping.options.source.split(" ")[0])
        except BlazeEarError as exc:
            assert "manifest.json" in str(exc) and "\n" not in str(exc), exc
            seen.add("error")
    assert "defaults" in seen and str(exp / "manifest.json") in seen  # both paths were taken


def test_analysis_failure_is_bad_input_not_model_errors(monkeypatch, tmp_path):
    """An unexpected exception inside the linter ends in exit 2 with one line, never exit 1."""
    import blazeear_edge.lint as lint_pkg
    from blazeear_edge.cli import main

    q = quantize(_concat_model(), tmp_path, "cat")

    def boom(*a, **k):
        raise TypeError("sequence item 0: expected str instance, bytes found")

    monkeypatch.setattr(lint_pkg, "run_checks", boom)
    with pytest.raises(BlazeEarError, match="cannot be analysed") as ei:
        lint_model(q)
    assert str(q) in str(ei.value) and ei.value.exit_code == 2
    assert main(["lint", str(q)]) == 2


# ---------------------------------------------------------------------------------------------
# the default export, estimated for the compile its manifest tells the user to run
# ---------------------------------------------------------------------------------------------
def test_default_export_is_estimated_with_its_manifest_line(default_export):
    man = json.loads((default_export / "manifest.json").read_text())
    for key, line_key in (("int8_tflite", "generate"), ("int8_onnx", "generate_onnx")):
        art = man["artifacts"].get(key)
        if art is None:
            continue
        path = default_export / art["path"]
        rep = lint_model(path)
        opts = rep.mapping.options
        assert line_key in opts.source and opts.output_data_type == "int8", opts
        assert opts.input_data_type in ("uint8", "int8") and opts.epoch_controller
        # channel pads widened in the graph (auto picks concat): one EC blob, nothing else
        if man["export"]["channel_pad"] != "pad":
            assert rep.mapping.epochs == {"hw": 1, "hybrid": 0, "sw": 0} and rep.mapping.exact
        assert rep.summary["errors"] == 0
        # the export recorded the same estimate in its manifest
        assert man["lint"][key]["epochs"] == rep.mapping.epochs
    with pytest.raises(BlazeEarError, match="export folder"):  # points at its models
        lint_model(default_export)
    assert man["export"]["channel_pad_choice"]["predicted"]["pad"]["epochs"] == {
        "hw": 23, "hybrid": 22, "sw": 0}  # BlazeFace's 11 small pads: ST's 45 exactly
