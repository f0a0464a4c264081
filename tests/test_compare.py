"""The one compare engine (blazeear_edge.compare) and the checks built on it must fail on bad input.

Each test feeds a checker something it must reject (a perturbed fp32 artifact, a keypoint error
over the limit, a wrong zero point in the manifest, ...) and asserts the verdict, against figures
computed independently here (NumPy / onnxruntime directly), never against the checker's own
earlier output.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from blazeear_edge.compare import (FP32_DEFAULT, INT8_DEFAULT, RuntimeResult, Tolerances,
                                   compare_runtime, judge, scaled_error, tensor_stats)
from blazeear_edge.errors import BlazeEarError
from blazeear_edge.metrics import MatchStats
from blazeear_edge.postprocess import SPLIT_OUTPUTS, DecodeConfig

ANCHORS = np.tile(np.array([[0.5, 0.5, 1.0, 1.0]], np.float32), (896, 1))


def _outputs(rng, face_anchor=100, logit=4.0):
    """One image's split outputs with one confident anchor (a box of 40 px at the centre)."""
    out = {}
    for s in SPLIT_OUTPUTS:
        c = 16 if s.kind == "regressors" else 1
        a = np.zeros((1, s.anchor_count, c), np.float32)
        if s.kind == "scores":
            a[:] = -8.0
            if s.anchor_start <= face_anchor < s.anchor_start + s.anchor_count:
                a[0, face_anchor - s.anchor_start, 0] = logit
        else:
            a[..., 2:4] = 40.0
            a[..., 4:] = rng.uniform(-10, 10, (1, s.anchor_count, 12))
        out[s.name] = a
    return out


def _result(precision="int8"):
    return RuntimeResult("k", "label", precision, "onnx")


def test_tolerances_by_precision_are_distinct():
    t = Tolerances()
    assert t.for_precision("fp32") == FP32_DEFAULT and t.for_precision("int8") == INT8_DEFAULT
    assert FP32_DEFAULT.min_sqnr_db > INT8_DEFAULT.min_sqnr_db
    with pytest.raises(ValueError):
        t.for_precision("fp16")


def test_small_noise_passes_int8_but_fails_fp32():
    rng = np.random.default_rng(0)
    ref = [_outputs(rng) for _ in range(3)]
    # 0.5 % relative noise: about 46 dB, far from float32 rounding
    test = [{k: v * np.float32(1.005) for k, v in r.items()} for r in ref]
    cfg = DecodeConfig()
    r8 = compare_runtime(_result("int8"), ref, SPLIT_OUTPUTS, test, SPLIT_OUTPUTS, ANCHORS, cfg,
                         INT8_DEFAULT)
    r32 = compare_runtime(_result("fp32"), ref, SPLIT_OUTPUTS, test, SPLIT_OUTPUTS, ANCHORS, cfg,
                          FP32_DEFAULT)
    assert r8.failures == [] and r8.status == "ok"
    assert r32.status == "FAIL"
    assert any("SQNR" in f for f in r32.failures)
    assert any("scaled" in f for f in r32.failures)  # 0.005 * 40 px-level outputs > 1e-3


def test_tensor_stats_independent_sqnr():
    rng = np.random.default_rng(1)
    ref = [_outputs(rng)]
    noise = {k: v + rng.normal(0, 0.1, v.shape).astype(np.float32) for k, v in ref[0].items()}
    st = {t.name: t for t in tensor_stats(ref, [noise], SPLIT_OUTPUTS, SPLIT_OUTPUTS)}
    for name, r in ref[0].items():
        r64, t64 = r.astype(np.float64), noise[name].astype(np.float64)
        want = 10 * np.log10((r64 ** 2).sum() / ((r64 - t64) ** 2).sum())
        assert st[name].sqnr_db == pytest.approx(want, rel=1e-9)
        assert st[name].max_abs_err == pytest.approx(np.abs(r64 - t64).max(), rel=1e-9)


def test_scaled_error_is_relative_above_50():
    ref = [{"regressors_16x16": np.full((1, 512, 16), 1000.0, np.float32)}]
    spec = [SPLIT_OUTPUTS[0]]
    test = [{"regressors_16x16": ref[0]["regressors_16x16"] + np.float32(0.01)}]
    # 0.01 absolute at a peak of 1000: 0.01 / (1000 / 50) = 5e-4
    assert scaled_error(ref, test, spec) == pytest.approx(5e-4, rel=1e-3)
    small = [{"regressors_16x16": np.full((1, 512, 16), 10.0, np.float32)}]
    test = [{"regressors_16x16": small[0]["regressors_16x16"] + np.float32(0.01)}]
    assert scaled_error(small, test, spec) == pytest.approx(0.01, rel=1e-3)


@pytest.mark.parametrize("field,value,word", [
    ("max_keypoint_err_px", 30.0, "keypoint"),
    ("max_score_delta", 0.3, "score delta"),
])
def test_judge_checks_keypoint_and_score_limits(field, value, word):
    res = _result("int8")
    ok = MatchStats(ref=10, test=10, matched=10, iou_sum=9.5)
    res.match = ok
    res.confident = {"score": 0.6, "ref": 10, "missing": 0, "extra": 0}
    assert judge(res, INT8_DEFAULT) == ([], [])
    bad = MatchStats(ref=10, test=10, matched=10, iou_sum=9.5, **{field: value})
    res.match = bad
    fails, _ = judge(res, INT8_DEFAULT)
    assert len(fails) == 1 and word in fails[0]
    # just inside the limit passes
    res.match = MatchStats(ref=10, test=10, matched=10, iou_sum=9.5,
                           **{field: getattr(INT8_DEFAULT, field)})
    assert judge(res, INT8_DEFAULT)[0] == []


def test_judge_missing_and_extra_rates():
    res = _result("int8")
    res.match = MatchStats(ref=10, test=12, matched=9, iou_sum=8.5)
    res.confident = {"score": 0.6, "ref": 10, "missing": 1, "extra": 2}
    fails, _ = judge(res, INT8_DEFAULT)  # 0.1 missing > 0.05; 0.2 extra > 0.1
    assert any("missing" in f for f in fails) and any("extra" in f for f in fails)


def test_int8_sqnr_between_fail_and_warn_is_a_warning():
    from blazeear_edge.compare import TensorStats

    res = _result("int8")
    res.tensors = [TensorStats("scores_8x8", 1.0, 0.1, 20.0, 1.0, 20.0)]
    fails, warns = judge(res, INT8_DEFAULT)
    assert fails == [] and len(warns) == 1 and "20.0 dB" in warns[0]
    res.tensors = [TensorStats("scores_8x8", 1.0, 0.1, 5.0, 1.0, 5.0)]
    fails, _ = judge(res, INT8_DEFAULT)
    assert len(fails) == 1


def test_tolerances_file_roundtrip_and_errors(tmp_path):
    from blazeear_edge.compare import load_tolerances

    p = tmp_path / "t.json"
    p.write_text(json.dumps({"int8": {"min_sqnr_db": 12}, "fp32": {"max_scaled_err": 2e-3}}))
    t = load_tolerances(p)
    assert t.int8.min_sqnr_db == 12 and t.fp32.max_scaled_err == 2e-3
    assert t.int8.max_extra_rate == INT8_DEFAULT.max_extra_rate
    p.write_text(json.dumps({"int8": {"min_sqnr": 12}}))
    with pytest.raises(BlazeEarError, match="unknown key"):
        load_tolerances(p)
    assert math.isinf(Tolerances().int8.max_scaled_err)


# ---------------------------------------------------------------------------------------------
# checks on a real export
# ---------------------------------------------------------------------------------------------
@pytest.fixture()
def export_copy(default_export, tmp_path):
    dst = tmp_path / "exp"
    shutil.copytree(default_export, dst)
    return dst


def _perturb_onnx(path, factor):
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    for init in m.graph.initializer:  # the first float conv weight
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.ndim == 4 and a.size > 100:
            init.CopyFrom(numpy_helper.from_array(a * np.float32(factor), init.name))
            break
    onnx.save(m, str(path))


def test_parity_fails_a_slightly_perturbed_fp32_artifact(fp32_export, tmp_path):
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.parity import run_parity

    exp = tmp_path / "exp"
    shutil.copytree(fp32_export, exp)
    man = load_manifest(exp)
    rep = run_parity(exp, runtimes=["fp32_onnx"], c_check=False)
    assert next(r for r in rep.runtimes if r.key == "fp32_onnx").status == "ok"
    _perturb_onnx(man.artifact_path("fp32_onnx"), 1.0005)
    rep = run_parity(exp, runtimes=["fp32_onnx"], c_check=False)
    r = next(r for r in rep.runtimes if r.key == "fp32_onnx")
    assert r.status == "FAIL", r.to_dict()
    # the same outputs would pass the int8 limits: the fp32 ones were applied
    assert judge(r, INT8_DEFAULT)[0] == []


def test_parity_checks_onnx_output_quantization_against_manifest(export_copy):
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.parity import check_manifest
    from blazeear_edge.runtimes import export_runtimes

    p = export_copy / "manifest.json"
    d = json.loads(p.read_text())
    q = d["artifacts"]["int8_onnx"]["outputs"][1]["quantization"]
    q["zero_point"] += 1
    p.write_text(json.dumps(d))
    man = load_manifest(export_copy)
    rts, _ = export_runtimes(man, ["int8_onnx"])
    c = check_manifest(man, rts)
    assert c.status == "FAILED" and any("zero point" in f for f in c.failures), c.failures


def test_export_records_the_onnx_error_measured_independently(fp32_export):
    """The fp32 ONNX figure in the manifest equals ORT vs PyTorch computed here directly."""
    import onnxruntime as ort
    import torch

    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.parity import load_parity_images
    from blazeear_edge.postprocess import to_anchor_major
    from blazeear_edge.weights import load_model

    man = load_manifest(fp32_export)
    ims, _ = load_parity_images(None)  # the built-in hold-out: what the export verified on
    assert len(ims) == man.verification["images"]
    model = load_model().set_output_clip(man.export.logit_saturation, None).eval()
    sess = ort.InferenceSession(str(man.artifact_path("fp32_onnx")),
                                providers=["CPUExecutionProvider"])
    specs = man.output_specs("fp32_onnx")
    worst = {s.name: 0.0 for s in specs}
    with torch.no_grad():
        for x in ims.nchw:
            t = [r.numpy() for r in model(torch.from_numpy(x[None]))]
            o = sess.run(None, {sess.get_inputs()[0].name: x[None]})
            for s, tv, ov in zip(specs, t, o):
                e = np.abs(tv.astype(np.float64) - to_anchor_major(ov, s)).max()
                worst[s.name] = max(worst[s.name], float(e))
    rec = man.artifact("fp32_onnx").verification["max_abs_err"]
    for n, v in worst.items():
        assert v > 0  # float ONNX is never bit-identical to PyTorch here
        assert rec[n] == pytest.approx(v, rel=1e-5), n


def test_export_fails_when_the_onnx_differs_from_pytorch(tmp_path, monkeypatch):
    """A float ONNX that is not the PyTorch model must stop the export, nothing written."""
    import blazeear_edge.export as ex

    real = ex.export_onnx

    def perturbed(model, path, **kw):
        m = real(model, path, **kw)
        if path is not None:
            _perturb_onnx(path, 1.01)
        return m

    monkeypatch.setattr(ex, "export_onnx", perturbed)
    with pytest.raises(BlazeEarError, match="verification failed"):
        ex.export(ex.ExportConfig(formats=("onnx",), out=str(tmp_path / "o"), progress=False,
                                  channel_pad="concat"))
    assert not (tmp_path / "o").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.tmp")]


def test_manifest_field_of_wrong_type_is_a_one_line_error(tmp_path, default_export):
    from blazeear_edge.manifest import load_manifest

    d = json.loads((default_export / "manifest.json").read_text())
    d["artifacts"]["int8_tflite"]["outputs"][0]["scale"] = [1, 2]
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(BlazeEarError) as e:
        load_manifest(tmp_path)
    msg = str(e.value)
    assert "artifacts.int8_tflite.outputs[0]" in msg and "scale" in msg and "\n" not in msg


def test_manifest_v1_is_read_with_one_quantisation_encoding(tmp_path, default_export):
    """A schema-1 manifest (TFLite: top-level dtype/scale/zero point; ONNX: nested) reads as
    schema 2: every int8 output has ``quantization``."""
    from blazeear_edge.manifest import load_manifest

    d = json.loads((default_export / "manifest.json").read_text())
    d["schema"] = "blazeear-edge/manifest/1"
    for o in d["artifacts"]["int8_tflite"]["outputs"]:
        del o["quantization"]
    d["export"]["score_clip_in_graph"] = d["export"].pop("logit_saturation")
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    m = load_manifest(tmp_path)
    for key in ("int8_tflite", "int8_onnx"):
        for o in m.artifact(key).outputs:
            assert o.quantization is not None and o.quantization["dtype"] == "int8"
    t = m.artifact("int8_tflite").outputs[0]
    assert t.quantization["scale"] == t.spec.scale
    assert m.export.logit_saturation == 16.0
