"""Every checkpoint kind loads and gives the default model's outputs; every bad input is refused
with a message naming the file and the problem, exit status 2 and no traceback.

The fixtures are written here by re-saving MediaPipe's weights in each layout. The merged
(BlazeFace-PyTorch) layout is checked against the regressor tensors read straight from the
TFLite file, so the split/merge code is not its own reference.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch

from blazeear_edge.errors import BlazeEarError
from blazeear_edge.model import BlazeBlock, BlazeEar, fold_batchnorm
from blazeear_edge.preprocess import preprocess
from blazeear_edge.weights import (MEDIAPIPE_SHA256, load_model, mediapipe_tflite_path,
                                   merge_regressor_heads, read_tflite_tensors, save_state_dict)


@pytest.fixture(scope="module")
def x(astronaut):
    return torch.from_numpy(preprocess(astronaut)[0])


@pytest.fixture(scope="module")
def reference_outputs(model, x):
    with torch.no_grad():
        return [o.clone() for o in model(x)]


@pytest.fixture(scope="module")
def v1_state_dict(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ckpt")


@pytest.fixture(scope="module")
def v1_path(ckpt_dir, v1_state_dict):
    p = ckpt_dir / "blazeear_v1.pth"
    torch.save(v1_state_dict, p)
    return p


def outputs(m, x):
    with torch.no_grad():
        return m(x)


def assert_same_outputs(m, x, reference, exact=True):
    for got, ref in zip(outputs(m, x), reference):
        if exact:
            assert torch.equal(got, ref)
        else:
            torch.testing.assert_close(got, ref, atol=1e-4 * float(ref.abs().max()), rtol=0)


# ---------------------------------------------------------------------------------------------
# the default weights
# ---------------------------------------------------------------------------------------------
def test_default_is_the_documented_mediapipe_file(model):
    path = mediapipe_tflite_path()
    assert path.stat().st_size == 229_032
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633")
    assert MEDIAPIPE_SHA256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert model.info.kind == "mediapipe"
    assert model.info.default_anchors == "unit"
    assert not model.info.batchnorm and model.info.notes == []
    assert not model.training


def test_default_weights_equal_the_float16_tflite_tensors(model):
    """Spot-check the name mapping against tensors read from the file."""
    t = read_tflite_tensors(mediapipe_tflite_path())
    sd = model.state_dict()
    np.testing.assert_array_equal(sd["backbone1.0.weight"].numpy(),
                                  t["conv2d/Kernel"].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(sd["backbone2.4.convs.0.weight"].numpy(),
                                  t["depthwise_conv2d_15/Kernel"].transpose(3, 0, 1, 2))
    np.testing.assert_array_equal(sd["classifier_16.bias"].numpy(), t["classificator_16/Bias"])
    # float16 source: every weight is exactly representable in float16
    w = sd["backbone1.5.convs.1.weight"].numpy()
    np.testing.assert_array_equal(w.astype(np.float16).astype(np.float32), w)


def test_merge_regressor_heads_rebuilds_mediapipe_regressors(v1_state_dict):
    t = read_tflite_tensors(mediapipe_tflite_path())
    merged = merge_regressor_heads(v1_state_dict)
    assert len(merged) == 74
    assert not any("_box" in k or "_kp" in k for k in merged)
    for ours, tfl in (("regressor_8", "regressor_8"), ("regressor_16", "regressor_16")):
        np.testing.assert_array_equal(merged[f"{ours}.weight"],
                                      t[f"{tfl}/Kernel"].transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(merged[f"{ours}.bias"], t[f"{tfl}/Bias"])


# ---------------------------------------------------------------------------------------------
# every kind loads
# ---------------------------------------------------------------------------------------------
def test_blazeear_v1_state_dict(v1_path, v1_state_dict, x, reference_outputs):
    assert len(v1_state_dict) == 78
    m = load_model(v1_path)
    assert m.info.kind == "blazeear-v1"
    assert m.info.default_anchors == "unit" and not m.info.batchnorm
    assert m.info.source == str(v1_path)
    assert m.info.sha256 == hashlib.sha256(v1_path.read_bytes()).hexdigest()
    assert_same_outputs(m, x, reference_outputs)


def test_blazeface_pytorch_state_dict(tmp_path, v1_state_dict, x, reference_outputs):
    p = tmp_path / "blazeface.pth"
    torch.save({k: torch.as_tensor(v) for k, v in merge_regressor_heads(v1_state_dict).items()},
               p)
    m = load_model(p)
    assert m.info.kind == "blazeface-pytorch"
    assert m.info.default_anchors == "unit"
    assert_same_outputs(m, x, reference_outputs)


def test_save_state_dict_round_trips_each_folded_layout(tmp_path, model, x, reference_outputs):
    for kind in ("blazeear-v1", "blazeface-pytorch"):
        p = tmp_path / f"{kind}.pth"
        save_state_dict(model, p, kind=kind)
        assert not (tmp_path / f"{kind}.pth.tmp").exists()
        m = load_model(p)
        assert m.info.kind == kind
        assert_same_outputs(m, x, reference_outputs)
    with pytest.raises(ValueError):
        save_state_dict(model, tmp_path / "v2.pth", kind="blazeear-v2")


@pytest.mark.parametrize("wrap", ["training", "module.", "model.", "training+module."])
def test_wrapped_checkpoints(tmp_path, v1_state_dict, x, reference_outputs, wrap):
    sd = dict(v1_state_dict)
    if "module." in wrap:
        sd = {"module." + k: v for k, v in sd.items()}
    if wrap == "model.":
        sd = {"model." + k: v for k, v in sd.items()}
    obj = sd
    if wrap.startswith("training"):
        obj = {"model_state_dict": sd, "epoch": 12, "global_step": 3400,
               "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 1e-3}]},
               "best_val_loss": 0.25, "scheduler_state_dict": {"last_epoch": 12}}
    p = tmp_path / "BlazeEar_best.pth"
    torch.save(obj, p)
    m = load_model(p)
    assert m.info.kind == "blazeear-v1"
    if wrap.startswith("training"):
        assert "training checkpoint" in m.info.wrapper and "12" in m.info.wrapper
    if "module." in wrap:
        assert "module." in m.info.wrapper
    if wrap == "model.":
        assert "model." in m.info.wrapper
    assert_same_outputs(m, x, reference_outputs)


def test_tflite_path(tmp_path, x, reference_outputs):
    p = tmp_path / "my_face.tflite"
    shutil.copy(mediapipe_tflite_path(), p)
    m = load_model(p)
    assert m.info.kind == "tflite"
    assert m.info.default_anchors == "unit"
    assert_same_outputs(m, x, reference_outputs)


def identity_bn_state_dict(model):
    """A v2 (BatchNorm) state dict whose BatchNorms reproduce the folded model's conv biases."""
    bn = BlazeEar(batchnorm=True)
    sd = bn.state_dict()
    src = model.state_dict()
    for k in sd:
        if k in src:
            sd[k] = src[k].clone()
    for name, m in model.named_modules():
        if not isinstance(m, BlazeBlock):
            continue
        for i, (conv, norm) in enumerate((("dw_conv", "bn1"), ("pw_conv", "bn2"))):
            p = f"{name}."
            sd[p + f"{conv}.weight"] = m.convs[i].weight.detach().clone()
            n = m.convs[i].bias.numel()
            sd[p + f"{norm}.weight"] = torch.ones(n)
            sd[p + f"{norm}.bias"] = m.convs[i].bias.detach().clone()
            sd[p + f"{norm}.running_mean"] = torch.zeros(n)
            sd[p + f"{norm}.running_var"] = torch.full((n,), 1.0 - 1e-5)
            sd[p + f"{norm}.num_batches_tracked"] = torch.tensor(5)
    return sd


def test_blazeear_v2_batchnorm_checkpoint(tmp_path, model, x, reference_outputs):
    sd = identity_bn_state_dict(model)
    assert sum(k.endswith("running_mean") for k in sd) == 32
    p = tmp_path / "blazeear_v2.pth"
    torch.save({"model_state_dict": sd, "epoch": 3}, p)
    m = load_model(p)
    assert m.info.kind == "blazeear-v2"
    assert m.info.batchnorm and m.batchnorm
    assert m.info.default_anchors == "ear"
    assert not m.training
    assert_same_outputs(m, x, reference_outputs, exact=False)
    f = load_model(p, fold=True)
    assert not f.batchnorm and f.info.kind == "blazeear-v2"
    assert any("folded" in n for n in f.info.notes)
    assert_same_outputs(f, x, reference_outputs, exact=False)


def test_blazeear_v2_random_statistics_loaded_and_folded_agree(tmp_path, x, random_bn_model):
    bn = random_bn_model(seed=3)
    p = tmp_path / "v2_random.pth"
    torch.save({"module." + k: v for k, v in bn.state_dict().items()}, p)
    loaded = load_model(p)
    assert loaded.info.kind == "blazeear-v2"
    ref = outputs(bn, x)
    assert_same_outputs(loaded, x, ref)  # the same BN numbers: bit-identical
    assert_same_outputs(load_model(p, fold=True), x, ref, exact=False)
    assert_same_outputs(fold_batchnorm(loaded), x, ref, exact=False)
    # num_batches_tracked is optional (some exporters drop it)
    sd = {k: v for k, v in bn.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "v2_nbt.pth")
    assert_same_outputs(load_model(tmp_path / "v2_nbt.pth"), x, ref)


def test_v2_checkpoint_defaults_to_ear_anchors_in_the_cli(tmp_path, model, astronaut_png,
                                                          run_cli):
    p = tmp_path / "v2.pth"
    torch.save(identity_bn_state_dict(model), p)
    r = run_cli("detect", astronaut_png, "--weights", p)
    assert r.code == 0, r.err
    assert "anchors: ear" in r.err and "BatchNorm" in r.err
    r = run_cli("detect", astronaut_png, "--weights", p, "--anchors", "unit")
    assert r.code == 0 and "anchors: unit" in r.err
    r = run_cli("detect", astronaut_png)
    assert r.code == 0 and "anchors: unit" in r.err


# ---------------------------------------------------------------------------------------------
# bad inputs: message, exit status 2, no traceback
# ---------------------------------------------------------------------------------------------
def refused(run_cli, image, weights, *needles):
    r = run_cli("detect", image, "--weights", weights)
    assert r.code == 2, (r.code, r.err)
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("blazeear-edge detect: error: ")
    assert r.out == ""
    for n in needles:
        assert n in lines[0], (n, lines[0])
    with pytest.raises(BlazeEarError):  # the library raises the same error
        load_model(weights)
    return lines[0]


def test_missing_file(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "nope.pth"
    refused(run_cli, astronaut_png, p, "not found", str(p))


def test_directory(tmp_path, astronaut_png, run_cli):
    refused(run_cli, astronaut_png, tmp_path, "directory", str(tmp_path))


def test_empty_file(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "empty.pth"
    p.write_bytes(b"")
    refused(run_cli, astronaut_png, p, "empty", str(p))


# torch's weights_only unpickler raises KeyError / IndexError on text starting with 'h', 'a',
# 't'...: these cases once leaked a traceback.
TORCH_LOAD_LEAK = ()


@pytest.mark.parametrize("text", [
    "# a README, not weights\n",
    pytest.param("hello world\n", marks=TORCH_LOAD_LEAK, id="hello"),       # KeyError 101
    pytest.param("a,b,c\n1,2,3\n", marks=TORCH_LOAD_LEAK, id="csv"),       # IndexError
    pytest.param("these are not weights\n", marks=TORCH_LOAD_LEAK, id="these"),
])
def test_text_file(tmp_path, astronaut_png, run_cli, text):
    p = tmp_path / "notes.pth"
    p.write_text(text)
    refused(run_cli, astronaut_png, p, "not a PyTorch checkpoint", str(p))


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_of_random_length(tmp_path, astronaut_png, run_cli, seed):
    rng = np.random.default_rng(seed)
    p = tmp_path / "random.bin"
    p.write_bytes(rng.integers(0, 256, int(rng.integers(1, 5000)), dtype=np.uint8).tobytes())
    refused(run_cli, astronaut_png, p, str(p), "not a PyTorch checkpoint")


def test_random_bytes_starting_with_a_pickle_opcode(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "random.bin"
    rest = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    p.write_bytes(b"r\x85@\xbc" + rest)  # LONG_BINPUT with no stack: IndexError in torch.load
    refused(run_cli, astronaut_png, p, str(p), "not a PyTorch checkpoint")


def test_truncated_tflite(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "cut.tflite"
    p.write_bytes(mediapipe_tflite_path().read_bytes()[:5000])
    refused(run_cli, astronaut_png, p, str(p), "TFLite")


def test_not_a_state_dict(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], p)
    refused(run_cli, astronaut_png, p, "no state dict", str(p))


def test_unrelated_state_dict(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}, p)
    refused(run_cli, astronaut_png, p, "unsupported model", "fc.weight", str(p))


def test_missing_and_unexpected_keys_are_listed(tmp_path, v1_state_dict, astronaut_png, run_cli):
    sd = dict(v1_state_dict)
    del sd["classifier_8.weight"], sd["backbone2.3.convs.1.bias"]
    sd["extra_head.weight"] = torch.zeros(2)
    p = tmp_path / "keys.pth"
    torch.save(sd, p)
    line = refused(run_cli, astronaut_png, p, str(p), "2 missing keys", "classifier_8.weight",
                   "backbone2.3.convs.1.bias", "1 unexpected keys", "extra_head.weight")
    assert "regressor_8_box" not in line


def test_first_shape_mismatch_is_named(tmp_path, v1_state_dict, astronaut_png, run_cli):
    sd = dict(v1_state_dict)
    sd["backbone1.6.convs.1.weight"] = torch.zeros(37, 36, 1, 1)  # expected (42, 36, 1, 1)
    sd["classifier_16.weight"] = torch.zeros(5, 96, 1, 1)
    p = tmp_path / "shape.pth"
    torch.save(sd, p)
    line = refused(run_cli, astronaut_png, p, str(p), "backbone1.6.convs.1.weight",
                   "(37, 36, 1, 1)", "(42, 36, 1, 1)")
    assert "classifier_16" not in line


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weight_is_named(tmp_path, v1_state_dict, astronaut_png, run_cli, bad):
    sd = dict(v1_state_dict)
    w = sd["backbone2.1.convs.0.bias"].clone()
    w[7] = bad
    sd["backbone2.1.convs.0.bias"] = w
    p = tmp_path / "nan.pth"
    torch.save(sd, p)
    refused(run_cli, astronaut_png, p, str(p), "backbone2.1.convs.0.bias", "NaN or Inf")


def test_debug_shows_the_traceback(tmp_path, astronaut_png, run_cli):
    p = tmp_path / "notes.pth"
    p.write_text("# not weights\n")
    r = run_cli("--debug", "detect", astronaut_png, "--weights", p)
    assert r.code == 2
    assert "Traceback" in r.err and "not a PyTorch checkpoint" in r.err
