"""The per-tensor report of the int8 ONNX (``quantize.activation_sqnr``)."""
from __future__ import annotations

import numpy as np


def _conv_relu_clip(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (4, 8, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"]),
             helper.make_node("Constant", [], ["lo"], value=numpy_helper.from_array(
                 np.array(-1.5, np.float32))),
             helper.make_node("Constant", [], ["hi"], value=numpy_helper.from_array(
                 np.array(1.5, np.float32))),
             helper.make_node("Clip", ["c2", "lo", "hi"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                      [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))


def test_own_rounding_of_relu_and_clip_outputs_is_measured_after_the_clamp(tmp_path):
    """ORT drops a Relu / Clip in front of a QuantizeLinear, so its own ``qdq_err`` compares the
    unclamped tensor and reports the Relu as noise. The report must clamp first: then it equals
    the SQNR of rounding the float model's tensor on the int8 model's own scale and zero point."""
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                         compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    from blazeear_edge.quantize import activation_sqnr, quantize_onnx

    f, q = tmp_path / "f.onnx", tmp_path / "q.onnx"
    _conv_relu_clip(f)
    x = np.random.default_rng(0).uniform(-1, 1, (16, 3, 16, 16)).astype(np.float32)
    quantize_onnx(f, q, x, input_name="x")
    rows = {r["tensor"]: r for r in activation_sqnr(f, q, x[:4], "x")}
    assert {"r1", "y"} <= set(rows)

    # ORT's own figure for the same tensors is the unclamped comparison (the case under test)
    def reader():
        return iter([{"x": x[i:i + 1]} for i in range(4)])
    modify_model_output_intermediate_tensors(str(q), str(tmp_path / "qa.onnx"))
    modify_model_output_intermediate_tensors(str(f), str(tmp_path / "fa.onnx"))
    matching = create_activation_matching(collect_activations(str(tmp_path / "qa.onnx"), reader()),
                                          collect_activations(str(tmp_path / "fa.onnx"), reader()))
    ort = compute_activation_error(matching)
    assert ort["r1"]["qdq_err"] < 10 and ort["y"]["qdq_err"] < 25

    # independent: clamp the int8 graph's tensor as the float graph does, round it on the
    # graph's own scale / zero point
    import onnx
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(q)).graph.initializer}
    for name, (lo, hi) in (("r1", (0.0, np.inf)), ("y", (-1.5, 1.5))):
        s, z = float(inits[f"{name}_scale"]), int(inits[f"{name}_zero_point"])
        t = np.clip(np.concatenate(matching[name]["pre_qdq"]), lo, hi)
        r = (np.clip(np.round(t / s) + z, -128, 127) - z) * s
        want = 10 * np.log10(np.sum(t ** 2) / np.sum((t - r) ** 2))
        assert abs(rows[name]["qdq_sqnr_db"] - want) < 0.5, (name, rows[name], want)
        assert rows[name]["qdq_sqnr_db"] > 30
