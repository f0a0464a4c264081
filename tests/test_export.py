"""export --int8: artifacts, manifest, graph properties, round-trip detections, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blazeear_edge.manifest import load_manifest


def _cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "blazeear_edge", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=600)


def test_export_writes_all_artifacts_and_a_consistent_manifest(default_export):
    from blazeear_edge.weights import sha256_file

    m = load_manifest(default_export)
    assert set(m.artifacts) == {"fp32_onnx", "int8_onnx", "fp32_tflite", "int8_tflite"}
    for key, a in m.data["artifacts"].items():
        p = default_export / a["path"]
        assert p.is_file(), key
        assert sha256_file(p) == a["sha256"]
        assert p.stat().st_size == a["size_bytes"]
    assert sha256_file(default_export / "anchors.npy") == m.data["anchors"]["sha256"]
    a = m.anchors()
    assert a.shape == (896, 4)
    np.testing.assert_allclose(a[0], [0.03125, 0.03125, 1, 1])
    assert m.data["model"]["params"] == 101390
    assert m.data["calibration"]["default_used"] is True
    assert "calibrate on your own images" in m.data["calibration"]["note"]
    assert m.data["decode"]["score_thresh"] == 0.5 and m.data["decode"]["nms"] == "weighted"
    assert "stedgeai generate" in m.data["stedgeai"]["generate"]
    assert (default_export / "calib.npz").is_file() and (default_export / "quant_report.json").is_file()
    # no temporary folders left beside the export
    assert not [p for p in default_export.parent.iterdir() if ".tmp-" in p.name]


def test_fp32_artifacts_verified_within_tolerance(default_export):
    m = load_manifest(default_export)
    for key in ("fp32_onnx", "fp32_tflite"):
        v = m.artifact(key).verification
        assert v["max_scaled_err"] <= 1e-3, (key, v)


def test_int8_round_trip_finds_the_same_detections(default_export):
    """Recorded figures and an independent re-run on the astronaut photo."""
    from skimage import data

    from blazeear_edge.metrics import match_detections
    from blazeear_edge.postprocess import decode_outputs
    from blazeear_edge.preprocess import preprocess
    from blazeear_edge.runtimes import run_onnx, run_tflite
    from blazeear_edge.weights import load_model

    m = load_manifest(default_export)
    for key in ("int8_onnx", "int8_tflite"):
        d = m.artifact(key).verification["detections"]
        assert d["ref"] >= 15, d  # the hold-out has faces
        assert d["match_rate"] >= 0.9 and d["extra"] <= 2, (key, d)
        assert d["mean_iou"] >= 0.7, (key, d)
    x, _ = preprocess(data.astronaut())
    model = load_model().set_output_clip(m.export.logit_saturation, None)
    from blazeear_edge.runtimes import run_torch

    specs = m.output_specs("fp32_onnx")
    anchors, cfg = m.anchors(), m.decode_config()
    ref = decode_outputs(run_torch(model, x, specs)[0], anchors, cfg, specs)
    assert len(ref) == 1
    q_onnx = run_onnx(m.artifact_path("int8_onnx"), x, m.output_specs("int8_onnx"))[0]
    q_tfl = run_tflite(m.artifact_path("int8_tflite"), x.transpose(0, 2, 3, 1),
                       m.output_specs("int8_tflite"))[0]
    for out, specs_q in ((q_onnx, m.output_specs("int8_onnx")),
                         (q_tfl, m.output_specs("int8_tflite"))):
        det = decode_outputs(out, anchors, cfg, specs_q)
        st = match_detections(ref, det)
        assert st.matched == 1 and st.extra == 0
        assert st.mean_iou > 0.8
        assert abs(float(ref.scores[0] - det.scores[0])) < 0.2  # int8 logit noise: see README


def test_int8_onnx_is_qdq_int8_per_channel_symmetric(default_export):
    import onnx
    from onnx import numpy_helper

    m = load_manifest(default_export)
    model = onnx.load(str(m.artifact_path("int8_onnx")))
    ops = {n.op_type for n in model.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert not ops & {"QLinearConv", "QLinearAdd", "ConvInteger", "MatMulInteger",
                      "DynamicQuantizeLinear"}
    inits = {i.name: i for i in model.graph.initializer}
    for t in model.graph.initializer:
        assert t.data_type not in (onnx.TensorProto.FLOAT16, onnx.TensorProto.UINT8), t.name
    conv_weight_dq = 0
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            w = inits[n.input[0]]
            if w.data_type != onnx.TensorProto.INT8 or len(w.dims) != 4:
                continue
            conv_weight_dq += 1
            zp = numpy_helper.to_array(inits[n.input[2]])
            scale = numpy_helper.to_array(inits[n.input[1]])
            assert np.all(zp == 0), n.name
            assert scale.size == w.dims[0] and scale.size > 1 or w.dims[0] == 1, n.name
    assert conv_weight_dq >= 37
    for v in list(model.graph.input) + list(model.graph.output):
        dims = [d.dim_value for d in v.type.tensor_type.shape.dim]
        assert all(d > 0 for d in dims), (v.name, dims)
    assert [o.name for o in model.graph.output] == [o["name"] for o in
                                                      m.data["artifacts"]["int8_onnx"]["outputs"]]


def test_int8_tflite_has_no_float16_and_int8_outputs(default_export):
    import tflite

    m = load_manifest(default_export)
    buf = m.artifact_path("int8_tflite").read_bytes()
    g = tflite.Model.GetRootAsModel(buf, 0).Subgraphs(0)
    types = {g.Tensors(i).Type() for i in range(g.TensorsLength())}
    assert tflite.TensorType.FLOAT16 not in types
    outs = m.data["artifacts"]["int8_tflite"]["outputs"]
    assert {o["name"] for o in outs} == {"regressors_16x16", "scores_16x16", "regressors_8x8",
                                         "scores_8x8"}
    # scale / zero point as the flatbuffer itself stores them (read here with the tflite
    # parser, not through the interpreter the export used)
    stored = {}
    for i in range(g.OutputsLength()):
        t = g.Tensors(g.Outputs(i))
        q = t.Quantization()
        stored[t.Name().decode()] = (float(q.ScaleAsNumpy()[0]), int(q.ZeroPointAsNumpy()[0]))
    for o in outs:
        assert o["dtype"] == "int8"
        s, z = stored[o["tensor_name"]]
        assert o["scale"] == pytest.approx(s, rel=1e-7) and o["zero_point"] == z
        assert o["quantization"] == {"dtype": "int8", "scale": o["scale"],
                                     "zero_point": o["zero_point"]}


def test_export_never_touched_the_network(export_network_attempts):
    if os.environ.get("BLAZEEAR_TEST_EXPORT"):
        pytest.skip("export reused from BLAZEEAR_TEST_EXPORT: network use was not observed")
    assert export_network_attempts == []


@pytest.mark.parametrize("mode", ["concat", "conv"])
def test_channel_pad_rewrites_are_numerically_identical(mode, tmp_path):
    """fp32: all three graphs agree to float rounding; int8 (same calibration): the concat
    rewrite gives the same int8 network as plain Pad, the conv rewrite within one step."""
    from skimage import data

    from blazeear_edge.export.onnx_export import export_onnx
    from blazeear_edge.postprocess import SPLIT_OUTPUTS
    from blazeear_edge.preprocess import preprocess
    from blazeear_edge.quantize import quantize_onnx
    from blazeear_edge.runtimes import run_onnx
    from blazeear_edge.weights import load_model

    model = load_model()
    x = np.concatenate([preprocess(data.astronaut())[0], preprocess(data.coffee())[0]])
    cal = np.random.default_rng(0).uniform(-1, 1, (8, 3, 128, 128)).astype(np.float32)
    cal = np.concatenate([x, cal])
    paths = {}
    for mm in ("pad", mode):
        g = export_onnx(model, tmp_path / f"{mm}.onnx", channel_pad=mm)
        ops = {n.op_type for n in g.graph.node}
        assert ("Pad" in ops) == (mm == "pad")
        quantize_onnx(tmp_path / f"{mm}.onnx", tmp_path / f"{mm}_q.onnx", cal)
        paths[mm] = mm
    f_pad = run_onnx(tmp_path / "pad.onnx", x, SPLIT_OUTPUTS)
    f_new = run_onnx(tmp_path / f"{mode}.onnx", x, SPLIT_OUTPUTS)
    for a, b in zip(f_pad, f_new):
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=2e-3, rtol=1e-5)
    q_pad = run_onnx(tmp_path / "pad_q.onnx", x, SPLIT_OUTPUTS)
    q_new = run_onnx(tmp_path / f"{mode}_q.onnx", x, SPLIT_OUTPUTS)
    from blazeear_edge.quantize import onnx_output_quantization

    oq = onnx_output_quantization(tmp_path / "pad_q.onnx")
    for a, b in zip(q_pad, q_new):
        for k in a:
            step = oq[k][0]
            diff = np.abs(a[k] - b[k]).max() / step
            if mode == "concat":
                assert diff < 1e-3, (k, diff)
            else:
                assert diff <= 1.0 + 1e-3, (k, diff)


# --- bad input: one line, exit 2, nothing left behind ----------------------------------------
def _assert_clean_failure(res, out_parent: Path, needle: str):
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if "error:" in ln]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    if out_parent.exists():
        assert not [p for p in out_parent.iterdir() if p.name.startswith(".")], \
            list(out_parent.iterdir())


def test_export_missing_weights(tmp_path):
    res = _cli("export", "--weights", str(tmp_path / "nope.pth"), "--out", str(tmp_path / "o"))
    _assert_clean_failure(res, tmp_path, "weights file not found")
    assert not (tmp_path / "o").exists()


def test_export_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(os.urandom(2048))
    res = _cli("export", "--weights", str(bad), "--out", str(tmp_path / "o"))
    _assert_clean_failure(res, tmp_path, "bad.pth")


def test_export_empty_and_imageless_calibration_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _cli("export", "--int8", "--calib", str(empty), "--out", str(tmp_path / "o"))
    _assert_clean_failure(res, tmp_path, "no images found")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not a jpeg")
    (junk / "b.png").write_text("nor a png")
    res = _cli("export", "--int8", "--calib", str(junk), "--out", str(tmp_path / "o"))
    _assert_clean_failure(res, tmp_path, "no readable images")
    assert not (tmp_path / "o").exists()


def test_export_unwritable_out(tmp_path):
    if os.geteuid() == 0:
        target = Path("/proc/blazeear-edge-test/out")  # not writable even for root
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "out"
    res = _cli("export", "--formats", "onnx", "--out", str(target))
    assert res.returncode == 2, res.stderr
    assert "cannot write here" in res.stderr and "Traceback" not in res.stderr


def test_export_unknown_format(tmp_path):
    res = _cli("export", "--formats", "onnx,coreml", "--out", str(tmp_path / "o"))
    _assert_clean_failure(res, tmp_path, "coreml")
    assert not (tmp_path / "o").exists()


def test_export_onnx_only_fp32_is_verified(tmp_path):
    res = _cli("export", "--formats", "onnx", "--out", str(tmp_path / "o"), "--quiet")
    assert res.returncode == 0, res.stderr
    m = load_manifest(tmp_path / "o")
    assert set(m.artifacts) == {"fp32_onnx"}
    assert "fp32.onnx" in res.stdout and "written to" in res.stdout
    v = m.artifact("fp32_onnx").verification
    assert v["verdict"] == "ok" and v["reference"] == "pytorch fp32"
    assert 0 < v["max_scaled_err"] <= m.verification["tolerances"]["fp32"]["max_scaled_err"]
    assert v["detections"]["matched"] == v["detections"]["ref"] > 0


def test_equalization_is_exact_in_float_and_balances_ranges():
    import torch
    from skimage import data

    from blazeear_edge.model import BlazeBlock
    from blazeear_edge.preprocess import preprocess
    from blazeear_edge.quantize.equalize import equalize_blocks
    from blazeear_edge.weights import load_model

    m = load_model()
    e = equalize_blocks(m)
    x = torch.from_numpy(preprocess(data.astronaut())[0])
    with torch.no_grad():
        for a, b in zip(m(x), e(x)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-3, rtol=1e-5)
    for blk in (mm for mm in e.modules() if isinstance(mm, BlazeBlock)):
        r1 = blk.convs[0].weight.abs().amax(dim=(1, 2, 3))
        r2 = blk.convs[1].weight.abs().amax(dim=(0, 2, 3))
        np.testing.assert_allclose(r1.detach().numpy(), r2.detach().numpy(), rtol=1e-5)
    # the checkpoint's own model is left untouched
    assert not torch.equal(m.backbone1[2].convs[0].weight, e.backbone1[2].convs[0].weight)


def test_manifest_records_the_quantisation_choices(default_export):
    m = load_manifest(default_export)
    ex = m.data["export"]
    assert ex["equalization"]["blocks"] == 16
    assert ex["logit_saturation"] == 16.0
    assert ex["channel_pad"] in ("pad", "concat", "conv")
    pred = ex["channel_pad_choice"]["predicted"]
    assert pred["pad"]["epochs"]["hybrid"] >= 22  # 2 DMA transposes per channel-axis Pad
    assert ex["channel_pad_choice"]["extra_vs_pad"]["conv"]["macc"] > 0
    # score heads: the fixed int8 range the manifest records, +-16 by default, in both int8
    # files (scale and zero point as each file stores them: onnxruntime's / TF Lite's rounding)
    assert ex["score_range"] == [-16.0, 16.0]
    for key in ("int8_tflite", "int8_onnx"):
        for o in m.data["artifacts"][key]["outputs"]:
            if o["kind"] == "scores":
                q = o["quantization"]
                lo, hi = (-128 - q["zero_point"]) * q["scale"], (127 - q["zero_point"]) * q["scale"]
                assert lo == pytest.approx(-16.0, abs=q["scale"]) and \
                    hi == pytest.approx(16.0, abs=q["scale"]), (key, o)


def test_export_lints_every_artifact(default_export):
    """Lint JSON beside each artifact; the int8 TFLite (the one ST compiles) predicts no error and,
    with the channel-pad rewrite, no hybrid or software epoch."""
    m = load_manifest(default_export)
    for key, a in m.data["artifacts"].items():
        d = json.loads((default_export / f"lint_{key}.json").read_text())
        assert d["model"] == a["path"] and d["summary"]["errors"] == 0, (key, d["summary"])
        assert m.data["lint"][key]["errors"] == 0
    if m.data["export"]["channel_pad"] != "pad":
        for key in ("int8_tflite", "int8_onnx"):
            t = m.data["lint"][key]["epochs"]
            assert t["hybrid"] == 0 and t["sw"] == 0, (key, t)


def test_onnx_heads_are_raw_maps_without_transpose(default_export):
    import onnx

    m = load_manifest(default_export)
    assert m.data["export"]["onnx_layout"] == "nchw"
    for key in ("fp32_onnx", "int8_onnx"):
        g = onnx.load(str(m.artifact_path(key))).graph
        assert not {n.op_type for n in g.node} & {"Transpose", "Reshape"}, key
        shapes = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in g.output}
        assert shapes == {"regressors_16x16": [1, 32, 16, 16], "scores_16x16": [1, 2, 16, 16],
                          "regressors_8x8": [1, 96, 8, 8], "scores_8x8": [1, 6, 8, 8]}
        for o in m.data["artifacts"][key]["outputs"]:
            assert o["layout"] == "nchw" and o["anchors_per_cell"] in (2, 6)


def test_export_strict_fails_on_a_lint_error(tmp_path, monkeypatch):
    """--strict: an error rule stops the export with exit 1 and nothing written."""
    import blazeear_edge.export as ex_mod
    from blazeear_edge.errors import BlazeEarError
    from blazeear_edge.export import ExportConfig, export

    real = ex_mod.lint_model

    def with_error(path, *a, **k):
        rep = real(path, *a, **k)
        d = rep.to_dict()

        class Fake:
            mapping = rep.mapping
            macc = rep.macc
            weights_bytes = rep.weights_bytes

            def to_dict(self):
                d["summary"]["errors"] = 1
                d["findings"].append({"rule": "float16", "severity": "error", "node": "x",
                                      "op": "Conv", "message": "m", "hint": "h", "source": "s"})
                return d
        return Fake()

    monkeypatch.setattr(ex_mod, "lint_model", with_error)
    out = tmp_path / "o"
    with pytest.raises(BlazeEarError) as ei:
        export(ExportConfig(formats=("onnx",), out=str(out), progress=False, strict=True,
                            channel_pad="concat"))
    assert ei.value.exit_code == 1 and "float16" in str(ei.value)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_export_options_are_the_config_fields():
    """Config once: every ``export`` option is an ExportConfig field with the same default, and
    bad values are refused by the config itself, naming the field."""
    import argparse
    from dataclasses import fields

    from blazeear_edge.cli import export as cli_export
    from blazeear_edge.errors import BlazeEarError
    from blazeear_edge.export import ExportConfig

    p = argparse.ArgumentParser()
    cli_export.add_arguments(p)
    args = vars(p.parse_args([]))
    defaults = {f.name: f.default for f in fields(ExportConfig)}
    mapped = {"formats": ",".join(defaults["formats"]), "equalize": None, "progress": None}
    for name, value in args.items():
        if name in ("no_equalize", "quiet", "thorough"):
            continue
        assert name in defaults, f"--{name.replace('_', '-')} is not an ExportConfig field"
        want = mapped.get(name, defaults[name])
        assert value == want, (name, value, want)
    for field, bad in (("calib_method", "kl"), ("channel_pad", "x"), ("nms", "soft"),
                       ("outputs", "three"), ("input_type", "fp16")):
        with pytest.raises(BlazeEarError, match=field):
            ExportConfig(**{field: bad})
    with pytest.raises(BlazeEarError, match="logit_saturation"):
        ExportConfig(logit_saturation=-1.0)


def test_score_range_sets_both_int8_files(tmp_path):
    """``--score-range`` is the score outputs' int8 range in the int8 ONNX as in the TFLite (until
    stop 19 the ONNX kept +-logit_saturation). Read from the ONNX graph itself: the
    DequantizeLinear that feeds each score output."""
    import onnx
    from onnx import numpy_helper

    from blazeear_edge.export import ExportConfig, export

    out = tmp_path / "o"
    export(ExportConfig(int8=True, formats=("onnx",), out=str(out), progress=False,
                        weight_rounding="nearest", calib_count=16, verify_count=4,
                        channel_pad="concat", score_range=(-4.0, 6.0)))
    m = load_manifest(out)
    assert m.data["export"]["score_range"] == [-4.0, 6.0]
    g = onnx.load(str(m.artifact_path("int8_onnx"))).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    seen = 0
    for o in g.output:
        if "scores" not in o.name:
            continue
        n = producer[o.name]
        while n.op_type != "DequantizeLinear":
            n = producer[n.input[0]]
        scale, zp = float(inits[n.input[1]]), int(inits[n.input[2]])
        assert scale == pytest.approx(10.0 / 255, rel=1e-5)
        assert (-128 - zp) * scale == pytest.approx(-4.0, abs=scale)
        assert (127 - zp) * scale == pytest.approx(6.0, abs=scale)
        seen += 1
    assert seen == 2


def test_default_config_fine_tunes_after_adaround(monkeypatch):
    """The default int8 weight preparation is AdaRound + QAT_DEFAULT fine-tuning steps, the ST
    application preset too (with percentile ranges); plain rounding does not fine-tune unless
    asked; --thorough and an
    explicit --qat-steps win over the default (the config the CLI really builds)."""
    import argparse

    import blazeear_edge.export as ex_mod
    from blazeear_edge.cli import export as cli_export
    from blazeear_edge.export import ExportConfig
    from blazeear_edge.quantize.qat import QAT_DEFAULT, QAT_THOROUGH

    assert QAT_DEFAULT > 0
    assert ExportConfig(int8=True).qat_steps == QAT_DEFAULT
    assert ExportConfig(int8=True, weight_rounding="nearest").qat_steps == 0
    st = ExportConfig(int8=True, st_app=True)
    assert st.qat_steps == QAT_DEFAULT and st.weight_rounding == "adaround"
    assert st.calib_method == "percentile" and ExportConfig(int8=True).calib_method == "movavg"
    assert ExportConfig(int8=True, st_app=True, calib_method="movavg").calib_method == "movavg"
    assert ExportConfig(int8=True, qat_steps=0).qat_steps == 0

    class Built(Exception):
        pass

    def capture(cfg):
        raise Built(cfg)

    monkeypatch.setattr(ex_mod, "export", capture)
    p = argparse.ArgumentParser()
    cli_export.add_arguments(p)
    for argv, want in ((["--int8"], QAT_DEFAULT), (["--int8", "--thorough"], QAT_THOROUGH),
                       (["--int8", "--qat-steps", "0"], 0), (["--int8", "--qat-steps", "7"], 7),
                       (["--int8", "--weight-rounding", "nearest"], 0),
                       (["--int8", "--st-app"], QAT_DEFAULT)):
        with pytest.raises(Built) as got:
            cli_export.run(p.parse_args(argv))
        assert got.value.args[0].qat_steps == want, argv
