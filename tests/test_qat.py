"""Quantisation-aware fine-tuning (quantize/qat.py): the simulated int8 graph must round where,
and with the parameters, onnxruntime's QDQ export rounds; fine-tuning must leave every weight on
the grid both quantisers recompute and lower the simulated error it optimises."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from blazeear_edge.calib_data import build_calibration  # noqa: E402
from blazeear_edge.errors import BlazeEarError  # noqa: E402
from blazeear_edge.export.onnx_export import export_onnx  # noqa: E402
from blazeear_edge.quantize import quantize_onnx  # noqa: E402
from blazeear_edge.quantize.qat import (FakeQuantModel, activation_qparams, finetune,  # noqa: E402
                                        quant_points)
from blazeear_edge.quantize.rounding import from_grid, on_grid_error, to_grid  # noqa: E402
from blazeear_edge.weights import load_model  # noqa: E402


@pytest.fixture(scope="module")
def images():
    return build_calibration(None, 12, seed=3, progress=False).nchw


@pytest.fixture(scope="module")
def grid_model():
    """The default model, folded, score logits saturated at 16, weights rounded to the grid."""
    m = load_model("mediapipe", fold=True).eval()
    m.set_output_clip(16.0, None)
    with torch.no_grad():
        for conv in (x for x in m.modules() if isinstance(x, torch.nn.Conv2d)):
            conv.weight.copy_(torch.from_numpy(from_grid(*to_grid(conv.weight.numpy()))))
    return m


def _onnx_point(tensor: str) -> str | None:
    """The simulation's name for a tensor that the ORT QDQ graph quantises."""
    if tensor == "input":
        return ""
    if tensor.endswith("_QuantizeLinear_Input"):
        return tensor[: -len("_QuantizeLinear_Input")]
    parts = tensor.strip("/").split("/")
    if parts[-1] == "Relu_output_0":
        return parts[-2]
    if parts[-1] == "Conv_output_0" and len(parts) >= 4 and parts[-3] == "convs":
        return f"{parts[-4]}.{parts[-2]}"
    return None  # MaxPool / Concat: values already on their input's grid


def test_simulation_rounds_where_and_as_onnxruntime_does(tmp_path, grid_model, images):
    """Independent reference: onnxruntime's quantize_static (moving-average MinMax, the export's
    fixed input and score ranges) on the same images. Every activation it quantises is one the
    simulation quantises, with the same scale and zero point."""
    from onnx import numpy_helper

    fp32 = tmp_path / "m.onnx"
    export_onnx(grid_model, fp32, channel_pad="concat")
    scores = ["scores_16x16", "scores_8x8"]
    q = quantize_onnx(fp32, tmp_path / "q.onnx", images, "movavg", "input",
                      fixed_output_ranges={n: (-16.0, 16.0) for n in scores})
    m = onnx.load(str(q))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    ort = {}
    for n in m.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in inits:
            ort[n.input[0]] = (float(inits[n.input[1]]), int(inits[n.input[2]]))
    fq = FakeQuantModel(grid_model, (-16.0, 16.0))
    fq.calibrate(images)
    sim = {name: activation_qparams(*r) for name, r in fq.ranges.items()}
    sim[""] = activation_qparams(-1.0, 1.0)
    for name in scores:
        sim[name] = activation_qparams(-16.0, 16.0)
    fq.remove()
    mapped = {t: _onnx_point(t) for t in ort}
    covered = {p for p in mapped.values() if p is not None}
    # every conv / ReLU / output tensor ORT quantises is simulated, and nothing else is
    assert covered == set(sim), (sorted(set(sim) - covered), sorted(covered - set(sim)))
    assert len(covered) == len(quant_points(grid_model)) + 4
    for t, p in mapped.items():
        if p is None:
            continue
        s_ort, z_ort = ort[t]
        s_sim, z_sim = sim[p]
        assert s_sim == pytest.approx(s_ort, rel=1e-4), t
        assert abs(z_sim - z_ort) <= 1, t


def test_simulated_weights_are_the_grid(grid_model, images):
    """In quant mode, the weights the forward pass uses are the integers times the scale."""
    fq = FakeQuantModel(grid_model)
    fq.calibrate(images[:4])
    seen = []
    conv = grid_model.backbone1[0]
    h = conv.register_forward_hook(lambda m, i, o: seen.append(m.weight.detach().clone()))
    try:
        fq(torch.from_numpy(images[:1]))
    finally:
        h.remove()
        fq.remove()
    q, s = to_grid(conv.weight.detach().numpy())
    assert np.array_equal(seen[0].numpy(), q.astype(np.float32) * s.reshape(-1, 1, 1, 1))
    # and the module has its own Parameter back
    assert isinstance(conv.weight, torch.nn.Parameter)


def test_finetune_keeps_the_grid_and_lowers_the_simulated_loss(grid_model, images):
    teacher = load_model("mediapipe", fold=True).eval()
    teacher.set_output_clip(16.0, None)
    # without augmentation the batches are the images the loss is evaluated on
    res = finetune(teacher, grid_model, images, steps=12, lr=1e-4, batch=4, refresh=6,
                   augmentation=False, progress=False)
    convs = [m for m in res.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(on_grid_error(c.weight.detach().numpy()) for c in convs) < 1e-3
    changed = sum(int(not torch.equal(a.weight, b.weight)) for a, b in zip(
        convs, (m for m in grid_model.modules() if isinstance(m, torch.nn.Conv2d))))
    assert changed > 0
    sim = res.report["simulated_on_calibration"]
    assert sim["after"]["kl"] < sim["before"]["kl"]
    assert res.model.score_clip == 16.0  # the export's clip is back on the returned model
    assert not any(p.requires_grad for p in res.model.parameters())


def test_finetune_rejects_bad_input(grid_model, images):
    with pytest.raises(BlazeEarError, match="qat-steps"):
        finetune(grid_model, grid_model, images, steps=0)
    with pytest.raises(BlazeEarError, match="empty"):
        finetune(grid_model, grid_model, images[:0], steps=5)
