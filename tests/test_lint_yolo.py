"""``lint`` on a YOLOv8-style graph as Ultralytics' ONNX export + onnxruntime ``quantize_static``
(QDQ) produce it (``tests/yolo_like.py``: the same PyTorch code paths, built offline).

What is asserted comes from the model's architecture (2 nearest x2 upsamples, 4 neck concats and
3 head concats of unequal channel counts, 8 C2f + 1 SPPF concats of equal ones, the DFL head) and
from ST's generated C of the two real YOLOv8 compiles (``../shared/data/third-party-n6``): which
of these operators ST made hybrid, software or no epoch at all.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import onnx
import pytest
from onnx import helper as oh

from blazeear_edge.lint import lint_model

import yolo_like  # noqa: E402  (tests/ is on sys.path under pytest's rootdir conftest)

INT_IO = {"input_data_type": "uint8", "output_data_type": "int8"}
THIRD_PARTY = Path(__file__).resolve().parents[2] / "shared" / "data" / "third-party-n6"


@pytest.fixture(scope="session")
def yolo(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("yolo_like")
    fp32 = yolo_like.export_onnx(d / "yolo_like_fp32.onnx")
    return {"fp32": fp32, "qdq": yolo_like.quantize_qdq(fp32, d / "yolo_like_qdq.onnx")}


def _rules(rep) -> Counter:
    return Counter(p.rule for p in rep.mapping.ops)


def _ops(rep, rule) -> Counter:
    return Counter(p.kind for p in rep.mapping.ops if p.rule == rule)


def test_qdq_export_is_read_and_mapped_as_st_maps_yolov8(yolo):
    rep = lint_model(yolo["qdq"], **INT_IO)
    assert rep.summary["errors"] == 0 and rep.exit_code() == 0
    assert not [f for f in rep.findings if f.rule == "unknown-op"]
    r = _rules(rep)
    assert r["resize-nearest-x2"] == 2  # hw expansion + hybrid DepthToSpace each
    assert r["concat-unequal-channels"] == 7  # 4 neck + 3 head (64 + nc)
    assert r["slice-channels"] >= 8  # the C2f chunks: views, no epoch
    assert r["transpose"] == 1 and r["concat-rank3-rows"] == 2  # DFL; cat(c_xy, wh), final
    assert _ops(rep, "hw")["Concat"] == 10  # 8 C2f + SPPF (equal channels) + anchor concat
    assert _ops(rep, "software-op") == Counter({"Softmax": 1})  # the DFL softmax
    # the two splits of the head each cost one DMA epoch per output (box/cls, lt/rb)
    assert sum(len(p.epochs) for p in rep.mapping.ops if p.rule == "slice-dma") == 4
    # nothing of the QDQ wrapping is left but ORT's float Div (it does not quantise Div)
    floats = {p.kind for p in rep.mapping.ops if p.rule == "float"}
    assert floats <= {"Div", "DequantizeLinear", "QuantizeLinear"}, floats
    hyb = rep.mapping.epochs["hybrid"]
    assert hyb == 2 + 7 + 4 + 1 + 2, rep.mapping.epochs


def test_qdq_plan_matches_the_real_yolov8_compiles(yolo):
    """Hybrid epochs by operator against ST's generated C of the two YOLOv8 TFLite compiles:
    the same DepthToSpace, Slice and Transpose counts; one Concat more, the exporter's separate
    cat(c_xy, wh) that onnx2tf merged into the final concat of the TFLite files."""
    truth = THIRD_PARTY / "truth.json"
    if not truth.is_file():
        pytest.skip(f"third-party compiles not found at {truth}")
    from test_lint_third_party import st_kinds
    hyb, sw = st_kinds(lint_model(yolo["qdq"], **INT_IO))
    for e in json.loads(truth.read_text()):
        if not e["name"].startswith("yolov8"):
            continue
        want = dict(e["hybrid_ops"])
        want["Concat"] += 1
        assert dict(hyb) == want, (dict(hyb), e["hybrid_ops"])
        assert sw["Softmax"] == e["sw_ops"]["Softmax"] == 1


def test_float_export_with_assume_int8_gives_the_same_plan(yolo):
    q = lint_model(yolo["qdq"], **INT_IO)
    f = lint_model(yolo["fp32"], assume_int8=True, **INT_IO)
    assert f.summary["errors"] == 0 and "float-model" in {x.rule for x in f.findings}
    assert f.mapping.epochs["hybrid"] == q.mapping.epochs["hybrid"]
    assert _rules(f)["concat-unequal-channels"] == 7


def test_default_output_is_the_files_float(yolo):
    """Without --output-data-type the float output costs its software DequantizeLinear."""
    d = lint_model(yolo["qdq"])
    i8 = lint_model(yolo["qdq"], **INT_IO)
    assert d.mapping.epochs["sw"] == i8.mapping.epochs["sw"] + 1
    assert "float-io" in {x.rule for x in d.findings}


def test_nms_inside_the_graph_still_fails_with_st_message(yolo, tmp_path, run_cli):
    m = onnx.load(str(yolo["fp32"]))
    g = m.graph
    g.node.append(oh.make_node("Transpose", ["output0"], ["boxes_t"], "to_boxes", perm=[0, 2, 1]))
    g.node.append(oh.make_node("Slice", ["boxes_t", "s0", "s4", "s2"], ["boxes"], "box4"))
    g.node.append(oh.make_node("NonMaxSuppression", ["boxes", "output0"], ["selected"], "nms"))
    import numpy as np
    from onnx import numpy_helper as nh
    for name, v in (("s0", [0]), ("s4", [4]), ("s2", [2])):
        g.initializer.append(nh.from_array(np.array(v, np.int64), name))
    g.output.append(oh.make_tensor_value_info("selected", onnx.TensorProto.INT64, [-1, 3]))
    path = tmp_path / "yolo_nms.onnx"
    onnx.save(m, str(path))
    rep = lint_model(path)
    hit = [f for f in rep.findings if f.rule == "unsupported-op"]
    assert hit and hit[0].severity == "error" and "NonMaxSuppression" in hit[0].message
    assert "Unsupported layer types" in hit[0].source
    r = run_cli("lint", path)
    assert r.code == 1 and "unsupported-op" in r.out


@pytest.fixture(scope="session")
def yolo_tflite(yolo, tmp_path_factory) -> Path:
    """The same network as a full-integer TFLite (onnx2tf + TF Lite converter, about 25 s)."""
    return yolo_like.export_tflite_int8(yolo["fp32"], tmp_path_factory.mktemp("yolo_tfl"))


@pytest.mark.slow
def test_tflite_int8_export_maps_like_the_qdq_onnx_and_st(yolo, yolo_tflite):
    """Both readers give the same hybrid plan by operator on the same network; the TFLite form
    has ST's single software epoch (the DFL Softmax: the converter quantises the Div too) and
    folds onnx2tf's NHWC -> NCHW head transposes as ST's compiles do."""
    from test_lint_third_party import st_kinds
    t = lint_model(yolo_tflite, output_data_type="int8")
    q = lint_model(yolo["qdq"], **INT_IO)
    assert t.summary["errors"] == 0 and not [f for f in t.findings if f.rule == "unknown-op"]
    r = _rules(t)
    assert r["layout-transpose"] == 3 and r["transpose"] == 1
    assert r["slice-channels"] == 16  # 8 C2f, 2 STRIDED_SLICE each
    assert r["concat-unequal-channels"] == 7 and r["resize-nearest-x2"] == 2
    assert st_kinds(t)[0] == st_kinds(q)[0]
    assert dict(st_kinds(t)[1]) == {"Softmax": 1}
    assert t.mapping.epochs["sw"] == 1 and t.mapping.epochs["hybrid"] == q.mapping.epochs["hybrid"]


@pytest.fixture(scope="session")
def yolo11_qdq(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("yolo11_like")
    fp32 = yolo_like.export_onnx(d / "yolo11_like_fp32.onnx", psa=True)
    return yolo_like.quantize_qdq(fp32, d / "yolo11_like_qdq.onnx")


def test_yolo11_attention_block_is_mapped_not_failed(yolo11_qdq):
    """YOLO11's C2PSA (no ST compile of it here): no error and no unknown operator; its two
    MatMul of activations and its Softmax run in software, by the general rules."""
    rep = lint_model(yolo11_qdq, **INT_IO)
    assert rep.summary["errors"] == 0 and rep.exit_code() == 0
    assert not [f for f in rep.findings if f.rule == "unknown-op"]
    attn = [p for p in rep.mapping.ops if "/attn/" in p.node]
    assert Counter(p.kind for p in attn if p.unit == "sw") == Counter({"MatMul": 2,
                                                                       "Softmax": 1})
    assert _rules(rep)["concat-unequal-channels"] == 7  # the rest of the plan is unchanged


def test_yolo_rules_survive_odd_shapes(yolo):
    """The new Slice / Split / Concat / Transpose rules on tensors whose shapes a reader could
    not pin down (unknown, rank-changed, dynamic): every graph is still placed and checked,
    never an exception (which would turn a readable model into exit status 2)."""
    import numpy as np

    from blazeear_edge.lint import read_model
    from blazeear_edge.lint.mapping import estimate
    from blazeear_edge.lint.rules import run_checks

    rng = np.random.default_rng(25)
    kinds = {"Concat", "Slice", "Split", "Transpose", "Resize", "Div"}
    for trial in range(12):
        g = read_model(yolo["qdq"])
        names = sorted({t for n in g.nodes if n.kind in kinds for t in n.inputs + n.outputs
                        if t and g.tensor(t) is not None and not g.is_const(t)})
        for name in rng.choice(names, size=min(25, len(names)), replace=False):
            t = g.tensor(str(name))
            pick = int(rng.integers(0, 4))
            if pick == 0:
                t.shape = None
            elif pick == 1:
                t.shape = tuple(-1 for _ in t.shape or (1,))
            elif pick == 2:
                t.shape = tuple(int(v) for v in rng.integers(1, 9, int(rng.integers(1, 6))))
            else:
                t.shape = ()
        ops = estimate(g).ops
        assert len(ops) == len(g.nodes)
        run_checks(g, ops)


def test_unsimplified_export_maps_like_the_simplified_one(yolo, tmp_path):
    """Without onnxsim / onnxslim, ``chunk`` and ``view`` export as run-time shape arithmetic
    (Shape -> Gather -> Add/Div -> Slice ends): the reader folds it as a compiler does, so the
    plan is the simplified export's and no Shape is left as an unknown software operator."""
    import io
    import warnings

    import torch

    net = yolo_like._build()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, yolo_like.SIZE, yolo_like.SIZE),), buf,
                          input_names=["images"], output_names=["output0"], opset_version=17,
                          dynamo=False, do_constant_folding=True)
    m = onnx.load_from_string(buf.getvalue())
    assert sum(n.op_type == "Shape" for n in m.graph.node) >= 8  # one per C2f chunk
    raw = tmp_path / "yolo_unsimplified.onnx"
    onnx.save(m, str(raw))
    q = yolo_like.quantize_qdq(raw, tmp_path / "yolo_unsimplified_qdq.onnx")
    rep = lint_model(q, **INT_IO)
    assert not [f for f in rep.findings if f.rule == "unknown-op"]
    assert not {p.kind for p in rep.mapping.ops} & {"Shape", "Gather"}
    assert _rules(rep)["concat-unequal-channels"] == 7 and _rules(rep)["slice-channels"] >= 8
    assert rep.mapping.epochs == lint_model(yolo["qdq"], **INT_IO).mapping.epochs
