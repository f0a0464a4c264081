"""The int8 weight levers of ``quantize.rounding``, each against an independent check:

* the grid is the one onnxruntime's own quantiser computes (its ``compute_scale_zp``);
* the closed-form layer error (moments of input patches) equals the error measured by running
  the convolution (``torch.nn.functional.conv2d``);
* AdaRound lowers that measured error below round-to-nearest, keeps each weight within one step of
  its float value, and pins the scale-setting element at +-127;
* bias correction: on held-out real photos (calibrated on the other ear210 split) the int8-weight
  model's per-channel conv output means equal fp32's far better than without it;
* the shared export: the int8 ONNX and the int8 TFLite carry the same integers for every conv
  (AdaRound's, not round-to-nearest's), i.e. the TF Lite converter and ORT recomputed the grid
  the weights were prepared on, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def test_grid_is_the_one_onnxruntime_computes():
    from onnxruntime.quantization.quant_utils import QuantType, compute_scale_zp, get_qmin_qmax_for_qType

    from blazeear_edge.quantize.rounding import to_grid, weight_scales

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 4, 3, 3)) * rng.uniform(0.01, 2, (8, 1, 1, 1))).astype(np.float32)
    qmin, qmax = get_qmin_qmax_for_qType(QuantType.QInt8.tensor_type, symmetric=True)
    s = weight_scales(w)
    ints, _ = to_grid(w)
    for o in range(8):
        zp, scale = compute_scale_zp(np.float32(w[o].min()), np.float32(w[o].max()), qmin, qmax,
                                     symmetric=True)[:2]
        assert int(zp) == 0
        assert float(scale) == pytest.approx(float(s[o]), rel=1e-6)
        ref = np.clip(np.round(w[o] / np.float32(scale)), qmin, qmax)
        np.testing.assert_array_equal(ints[o], ref)


@pytest.fixture(scope="module")
def small_model_and_images(lfw_upscaled, astronaut):
    from blazeear_edge.preprocess import preprocess
    from blazeear_edge.quantize.equalize import equalize_blocks
    from blazeear_edge.weights import load_model

    model = equalize_blocks(load_model("mediapipe", fold=True).set_output_clip(16.0, None))
    imgs = [preprocess(astronaut)[0][0]] + [preprocess(im)[0][0] for im in lfw_upscaled[:7]]
    return model, np.stack(imgs).astype(np.float32)


def _conv_error(model, name, input_of, wq, x):
    """Mean over output pixels of the summed squared error of the conv with weights ``wq`` on
    the fp32 model's input, against the fp32 conv: measured by running the convolution."""
    import torch.nn.functional as F

    from blazeear_edge.quantize.rounding import _capture

    conv = dict(model.named_modules())[name]
    xin = _capture(model, input_of, torch.from_numpy(x))
    kw = dict(stride=conv.stride, padding=conv.padding, groups=conv.groups)
    ref = F.conv2d(xin.double(), conv.weight.double(), **kw)
    test = F.conv2d(xin.double(), torch.from_numpy(wq).double(), **kw)
    return float(((test - ref) ** 2).sum(1).mean().detach())


@pytest.mark.parametrize("name", ["backbone1.0", "backbone1.3.convs.0", "backbone2.1.convs.1"])
def test_closed_form_error_matches_the_convolution_and_adaround_beats_nearest(
        small_model_and_images, name):
    from blazeear_edge.quantize.rounding import (_grouped, _layer_error, _moments, _quadratic,
                                                 adaround_layer, conv_layers, to_grid,
                                                 weight_scales)

    model, x = small_model_and_images
    input_of = dict(conv_layers(model))[name]
    conv = dict(model.named_modules())[name]
    w = conv.weight.detach().numpy()
    mom = _moments(model, model, name, input_of, conv, x)
    s = weight_scales(w).reshape(-1, 1, 1, 1)
    near, _ = to_grid(w)
    wn = near.astype(np.float32) * s
    quad = _quadratic(mom, _grouped(w.astype(np.float64), conv.groups), False)
    closed = float(_layer_error(_grouped(wn.astype(np.float64), conv.groups), quad).sum())
    measured = _conv_error(model, name, input_of, wn, x)
    assert closed == pytest.approx(measured, rel=1e-4)

    ints, stats = adaround_layer(w, mom, conv.groups, 300, centred=False)
    wa = ints.astype(np.float32) * s
    assert _conv_error(model, name, input_of, wa, x) < 0.9 * measured
    assert np.abs(ints.astype(np.float64) - w / s).max() <= 1.0 + 1e-4  # floor or ceil only
    flat = np.abs(w.reshape(w.shape[0], -1))
    top = ints.reshape(w.shape[0], -1)[np.arange(w.shape[0]), flat.argmax(1)]
    np.testing.assert_array_equal(np.abs(top), 127)  # the scale both quantisers recompute
    assert stats["flipped"] > 0


def test_prepared_weights_sit_on_their_grid(small_model_and_images):
    from blazeear_edge.quantize.rounding import on_grid_error, prepare_weights

    model, x = small_model_and_images
    before = max(on_grid_error(m.weight.detach().numpy()) for m in model.modules()
                 if isinstance(m, torch.nn.Conv2d))
    p = prepare_weights(model, x, "adaround", 50, progress=False)
    after = max(on_grid_error(m.weight.detach().numpy()) for m in p.model.modules()
                if isinstance(m, torch.nn.Conv2d))
    assert before > 0.4 and after < 1e-4
    assert len(p.report["layers"]) == 39 and p.report["flipped_vs_nearest"] > 0
    # the input model is left alone
    assert before == max(on_grid_error(m.weight.detach().numpy()) for m in model.modules()
                         if isinstance(m, torch.nn.Conv2d))


def test_bias_correction_matches_fp32_means_on_held_out_photos(ear210):
    from blazeear_edge.calib_data import build_calibration, load_images, resolve_source
    from blazeear_edge.quantize.equalize import equalize_blocks
    from blazeear_edge.quantize.rounding import prepare_weights
    from blazeear_edge.weights import load_model

    model = equalize_blocks(load_model("mediapipe", fold=True).set_output_clip(16.0, None))
    calib = build_calibration(str(ear210 / "val_coco.json"), 18, progress=False)
    _, samples = resolve_source(str(ear210 / "train_coco.json"))
    held = load_images(samples, count=24, progress=False).nchw  # never calibrated on
    plain = prepare_weights(model, calib.nchw, "nearest", 0, False, progress=False).model
    corrected = prepare_weights(model, calib.nchw, "nearest", 0, True, progress=False).model

    def means(m, name):
        got = {}
        mod = dict(m.named_modules())[name]
        h = mod.register_forward_hook(lambda _m, _i, o: got.__setitem__("y", o.detach()))
        with torch.no_grad():
            m(torch.from_numpy(held))
        h.remove()
        return got["y"].double().mean((0, 2, 3)).numpy()

    for name in ("backbone1.6.convs.1", "backbone2.0.convs.1", "backbone2.4.convs.1",
                 "classifier_8"):
        ref = means(model, name)
        before = np.abs(means(plain, name) - ref).mean()
        after = np.abs(means(corrected, name) - ref).mean()
        assert after < 0.35 * before, (name, before, after)
        assert after < 0.005, (name, after)


def test_bad_options_are_one_line_errors():
    from blazeear_edge.errors import BlazeEarError
    from blazeear_edge.export import ExportConfig, export
    from blazeear_edge.quantize.rounding import prepare_weights

    with pytest.raises(BlazeEarError, match="weight_rounding .*brecq"):
        export(ExportConfig(int8=True, weight_rounding="brecq", progress=False))
    with pytest.raises(BlazeEarError, match="rounding_iterations"):
        export(ExportConfig(int8=True, rounding_iterations=0, progress=False))
    assert ExportConfig().weight_rounding == "adaround"
    assert ExportConfig(int8=True, st_app=True).weight_rounding == "adaround"
    with pytest.raises(BlazeEarError, match="empty"):
        prepare_weights(None, np.zeros((0, 3, 128, 128), np.float32), progress=False)


# ---------------------------------------------------------------------------------------------
# the artifacts of the shared default export
# ---------------------------------------------------------------------------------------------
def _onnx_conv_weights(path):
    """[(ints OIHW, scales)] of the Conv weights of a QDQ model, in node order; or the float
    weights of an fp32 model (scales None)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    out = []
    for n in m.graph.node:
        if n.op_type != "Conv":
            continue
        src = n.input[1]
        if src in inits:
            out.append((inits[src], None))
            continue
        dq = producer[src]
        assert dq.op_type == "DequantizeLinear"
        q = inits[dq.input[0]]
        assert q.dtype == np.int8
        zp = inits[dq.input[2]] if len(dq.input) > 2 else np.zeros(1, np.int8)
        assert not np.any(zp)
        out.append((q, np.asarray(inits[dq.input[1]], np.float32).reshape(-1)))
    return out


def _tflite_conv_weights(path):
    """[(ints OIHW, scales)] of the int8 conv / depthwise kernels of a TFLite model."""
    from blazeear_edge.runtimes import tflite_interpreter

    it = tflite_interpreter(path)
    out = []
    for d in it.get_tensor_details():
        qp = d["quantization_parameters"]
        if d["dtype"] != np.int8 or len(d["shape"]) != 4 or len(qp["scales"]) < 2:
            continue
        try:
            t = it.get_tensor(d["index"])
        except ValueError:
            continue
        if qp["quantized_dimension"] == 0:  # CONV_2D kernel O, H, W, I
            ints = t.transpose(0, 3, 1, 2)
        else:  # DEPTHWISE_CONV_2D kernel 1, H, W, C
            ints = t.transpose(3, 0, 1, 2)
        out.append((ints, np.asarray(qp["scales"], np.float32)))
    return out


@pytest.mark.slow
def test_export_carries_adaround_rounding_into_both_int8_artifacts(default_export):
    from blazeear_edge.manifest import load_manifest

    man = load_manifest(default_export)
    weights = man.data["calibration"]["weights"]
    assert weights["method"] == "adaround" and weights["flipped_vs_nearest"] > 0
    # the default export fine-tunes after AdaRound (quantize.qat): its integers then move beyond
    # floor / ceil of the fp32 weights, by at most what Adam can move a weight (about lr per step)
    # plus one grid step. AdaRound's own floor / ceil property is checked in
    # test_closed_form_error_matches_the_convolution_and_adaround_beats_nearest.
    from blazeear_edge.quantize.qat import QAT_DEFAULT

    qat = weights.get("qat")
    assert qat and qat["steps"] == QAT_DEFAULT
    sim = qat["simulated_on_calibration"]
    assert sim["after"]["kl"] < sim["before"]["kl"]
    drift = qat["lr"] * qat["steps"]
    onnx_q = _onnx_conv_weights(man.artifact_path("int8_onnx"))
    fp32 = _onnx_conv_weights(man.artifact_path("fp32_onnx"))
    tfl = _tflite_conv_weights(man.artifact_path("int8_tflite"))
    assert len(onnx_q) == len(fp32) == len(tfl) > 30
    flipped = 0
    unused = list(range(len(tfl)))
    free = list(range(len(fp32)))  # the two graphs may list their convs in different orders
    for q, s in onnx_q:
        # the integers times their scale: within one grid step + the fine-tuning's drift of the
        # fp32 weights ...
        dev = {i: float(np.abs(q * s.reshape(-1, 1, 1, 1) - fp32[i][0]).max()) for i in free
               if fp32[i][0].shape == q.shape}
        assert dev, f"no fp32 conv of shape {q.shape}"
        i = min(dev, key=dev.get)
        assert dev[i] <= float(s.max()) + drift, (q.shape, dev[i], float(s.max()), drift)
        free.remove(i)
        r = fp32[i][0] / s.reshape(-1, 1, 1, 1)
        flipped += int((q != np.clip(np.round(r), -127, 127)).sum())
        # ... and the TF Lite converter recomputed exactly the same integers and scales
        hits = [j for j in unused if tfl[j][0].shape == q.shape and np.array_equal(tfl[j][0], q)]
        assert hits, f"no TFLite kernel carries the ONNX integers of a {q.shape} conv"
        unused.remove(hits[0])
        np.testing.assert_allclose(tfl[hits[0]][1], s, rtol=1e-6)
    assert flipped > 100  # not round-to-nearest
