"""ST FaceDetection drop-in (issue 15): camera-exact input, ST output order, the st-app decode
profile with ST's int8 pre-filter (NumPy and C), and the package for ST's application.

The fast tests need no export. The ``st_export`` tests run ``export --st-app`` once (a few
minutes; ``BLAZEEAR_TEST_ST_EXPORT=DIR`` reuses one made with
``blazeear-edge export --int8 --st-app --out DIR``) and check the written files.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from blazeear_edge.postprocess import (SPLIT_OUTPUTS, DecodeConfig, OutputSpec, decode_outputs,
                                       st_prefilter_level)
from blazeear_edge.preprocess import (is_camera_input, letterbox, normalize, pixels_to_input,
                                      quantize_values)
from blazeear_edge.stapp import (ST_APP_DECODE, ST_OUTPUT_ORDER, ST_OUTPUT_SHAPES,
                                 fold_camera_input, lost_levels, prefilter_warnings,
                                 st_reference_decode)


# ---------------------------------------------------------------------------------------------
# 1. camera input: the fold is exact in float, the byte mapping is the identity
# ---------------------------------------------------------------------------------------------
def _torch_out(m, x):
    import torch

    with torch.no_grad():
        return [o.numpy() for o in m(torch.from_numpy(np.ascontiguousarray(x)))]


def test_fold_camera_input_is_exact_in_float(model, ear210_images):
    """model(p / 127.5 - 1) == fold(model)(p / 255) on real photos, border included; a fold that
    keeps zero padding (the naive one) is visibly wrong, so the border handling is what makes it
    exact."""
    canv = np.stack([letterbox(im)[0] for im in ear210_images])
    x = np.concatenate([normalize(c) for c in canv])
    y = (canv.astype(np.float32) / np.float32(255.0)).transpose(0, 3, 1, 2)
    ref = _torch_out(model, x)
    folded = fold_camera_input(model)
    got = _torch_out(folded, y)
    for r, g in zip(ref, got):
        assert np.abs(r - g).max() <= 2e-6 * max(1.0, np.abs(r).max())
    naive = fold_camera_input(model)
    naive.stem_pad_value = 0.0
    bad = _torch_out(naive, y)
    assert max(np.abs(r - b).max() for r, b in zip(ref, bad)) > 1e-2
    assert model.stem_pad_value == 0.0  # the original is untouched


def test_camera_byte_mapping_is_identity():
    p = np.arange(256, dtype=np.uint8)
    assert is_camera_input("uint8", 1 / 255, 0) and not is_camera_input("uint8", 2 / 255, 127)
    assert not is_camera_input("int8", 1 / 255, 0)
    q = pixels_to_input(p, np.uint8, 1 / 255, 0)
    assert q.dtype == np.uint8 and np.array_equal(q, p)
    # float32 host values (normalize) give back every byte exactly
    x = normalize(np.broadcast_to(p[:, None, None], (256, 1, 3)).astype(np.uint8), "NHWC")
    assert np.array_equal(quantize_values(x, np.uint8, np.float32(1 / 255), 0)[0, :, 0, 0], p)
    # any other input quantisation keeps the plain formula on the float32 host values (a
    # [-1, 1]-range uint8 input, whose q is half an input step away from p for most bytes)
    s, z = 2 / 255, 127
    x32 = p.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    want = np.clip(np.round(x32 / np.float32(s)) + z, 0, 255)
    got = pixels_to_input(p, np.uint8, s, z)
    assert np.array_equal(got, want) and not np.array_equal(got, p)


# ---------------------------------------------------------------------------------------------
# 3. ST's pre-filter rounding
# ---------------------------------------------------------------------------------------------
def test_st_prefilter_level_truncates_toward_zero():
    # logit(0.8) = 1.3863; / 0.1255 = 11.046; + zp
    assert st_prefilter_level(0.8, 0.1255, -1) == 10
    assert st_prefilter_level(0.8, 0.1255, -30) == -18  # -18.95 truncates up to -18
    assert st_prefilter_level(0.5, 0.1255, -1) == -1
    assert st_prefilter_level(0.2, 0.1255, 0) == -11  # -11.05 truncates up to -11
    assert st_prefilter_level(0.999999, 0.01, 0) == 127  # saturated to int8
    assert st_prefilter_level(0.5, 0.1, 3, "uint8") == 3


def test_lost_levels_match_the_issue():
    """Scale 32/255 (range +-16), zero point -1 (our default score outputs): ST's rounding drops
    one level for every threshold <= 0.53 and none in 0.54..0.9 (issue 15)."""
    s = OutputSpec("scores_8x8", "scores", 512, 384, "int8", 32 / 255, -1)
    for t in (0.5, 0.51, 0.52, 0.53):
        assert len(lost_levels(t, s)) == 1, t
    for t in np.arange(0.54, 0.905, 0.01):
        assert lost_levels(float(t), s) == [], t
    msgs = prefilter_warnings(DecodeConfig(score_thresh=0.5, st_prefilter=True), [s])
    assert len(msgs) == 1 and "scores_8x8" in msgs[0] and "q > -1" in msgs[0]


def _random_int8_outputs(rng, n_hot=40, zp=-1, scale=32 / 255):
    specs = [OutputSpec(s.name, s.kind, s.anchor_start, s.anchor_count, "int8",
                        scale if s.kind == "scores" else 0.05, zp if s.kind == "scores" else 3,
                        s.shape) for s in SPLIT_OUTPUTS]
    outs = []
    for s in specs:
        if s.kind == "scores":
            q = np.full(s.shape, -100, np.int8)
            idx = rng.choice(s.anchor_count, n_hot, replace=False)
            q.reshape(-1)[idx] = rng.integers(-3, 30, n_hot)  # many equal levels near 0.5..1
            outs.append(q)
        else:
            r = rng.integers(-60, 60, s.shape)
            r[..., 2:4] = rng.integers(10, 60, r[..., 2:4].shape)  # real boxes: w, h > 0
            outs.append(r.astype(np.int8))
    return specs, outs


def test_numpy_st_profile_equals_the_st_reimplementation():
    """decode_outputs at the st-app profile == stapp.st_reference_decode (written separately from
    the documented behaviour) for both bindings, with many equal scores, at 0.8 and at 0.5
    (where the pre-filter drops a level)."""
    from blazeear_edge.anchors import resolve_anchors

    anchors = resolve_anchors(None, "unit").table.astype(np.float32)
    rng = np.random.default_rng(0)
    dropped = 0
    for k in range(30):
        specs, outs = _random_int8_outputs(rng)
        by = {s.name: o for s, o in zip(specs, outs)}
        order = [by[n] for n in ST_OUTPUT_ORDER]
        quant = [(next(s.scale for s in specs if s.name == n),
                  next(s.zero_point for s in specs if s.name == n)) for n in ST_OUTPUT_ORDER]
        for t, cap in ((0.8, 3), (0.5, 3), (0.5, 0)):
            cfg = DecodeConfig(score_thresh=t, iou_thresh=0.5, nms="hard", max_detections=cap,
                               st_prefilter=True)
            host = decode_outputs(outs, anchors, cfg, specs)
            rows = np.concatenate([host.scores[:, None], host.boxes], 1).reshape(-1, 5)
            for binding in ("index", "size"):
                ref = st_reference_decode(order, quant, anchors, binding, cfg)
                assert ref.shape == rows.shape and np.array_equal(ref, rows), (k, t, binding)
            plain = decode_outputs(outs, anchors, DecodeConfig(
                score_thresh=t, iou_thresh=0.5, nms="hard", max_detections=cap), specs)
            dropped += len(plain.scores) != len(host.scores) or not np.array_equal(
                plain.scores, host.scores)
    assert dropped > 0  # the pre-filter really changed some frames at 0.5 (no cap)


def test_index_binding_of_the_converter_order_reads_garbage():
    """App v1.0.0 reading buffers in the TF Lite converter's order (384x1 first) overruns."""
    from blazeear_edge.anchors import resolve_anchors
    from blazeear_edge.errors import BlazeEarError

    anchors = resolve_anchors(None, "unit").table.astype(np.float32)
    specs, outs = _random_int8_outputs(np.random.default_rng(1))
    by = {s.name: o for s, o in zip(specs, outs)}
    converter = ["scores_8x8", "regressors_8x8", "regressors_16x16", "scores_16x16"]
    with pytest.raises(BlazeEarError, match="read past its end"):
        st_reference_decode([by[n] for n in converter], [(0.1, 0)] * 4, anchors, "index")


# ---------------------------------------------------------------------------------------------
# C harness: the pre-filter option is bit-identical to NumPy
# ---------------------------------------------------------------------------------------------
def test_c_st_prefilter_identical_to_numpy(tmp_path, ear210_images):
    from blazeear_edge.harness import (find_tools, harness_model, make_vectors,
                                       minimal_manifest, quantize_outputs, quantize_specs,
                                       run_harness, torch_float_outputs)

    tools = find_tools()
    if tools.cc is None:
        pytest.skip("gcc not found (apt-get install -y gcc)")
    outs, lbs, anchors = torch_float_outputs(ear210_images)
    specs = quantize_specs(outs, SPLIT_OUTPUTS)
    model = harness_model(minimal_manifest(specs, anchors, name="st_prefilter"))
    q = [quantize_outputs(o, specs) for o in outs]
    names = [f"ear_{i}" for i in range(len(q))]
    vecs = []
    for t in (0.5, 0.52, 0.8):
        cfg = DecodeConfig(score_thresh=t, iou_thresh=0.5, nms="hard", max_detections=3,
                           st_prefilter=True)
        vecs += make_vectors(model, q, names=[f"{n}_st{t}" for n in names], letterboxes=lbs,
                             config=cfg)
    rep = run_harness(model, vecs, tmp_path, ("host",), tools=tools)
    assert all(r.match for r in rep.results["host"]) and rep.bit_exact("host")
    assert sum(len(v.expected) for v in vecs) > 0


# ---------------------------------------------------------------------------------------------
# the written files of `export --st-app`
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_st_export_file_order_and_manifest(st_export):
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.runtimes import tflite_interpreter

    man = load_manifest(st_export)
    it = tflite_interpreter(man.artifact_path("int8_tflite"))
    shapes = [tuple(int(v) for v in d["shape"]) for d in it.get_output_details()]
    assert shapes == list(ST_OUTPUT_SHAPES)  # on the written file
    assert [o.spec.name for o in man.artifact("int8_tflite").outputs] == list(ST_OUTPUT_ORDER)
    d_in = it.get_input_details()[0]
    assert d_in["dtype"] == np.uint8 and d_in["quantization"][1] == 0
    assert np.float32(d_in["quantization"][0]) == np.float32(1 / 255)
    raw = __import__("json").loads((st_export / "manifest.json").read_text())
    assert raw["st_app"]["output_order"] == "st" and raw["st_app"]["camera_input"] is True
    assert [n for n, _ in raw["st_app"]["outputs"]] == list(ST_OUTPUT_ORDER)
    assert man.decode_config() == ST_APP_DECODE
    # finer score steps: <= 0.04 logit per level, no level lost to ST's rounding at 0.8
    scores = [s for s in man.output_specs("int8_tflite") if s.kind == "scores"]
    assert all(s.scale <= 0.04 for s in scores)
    assert prefilter_warnings(ST_APP_DECODE, scores) == []
    assert raw["st_app"]["score_range"] == [-4.0, 6.0]
    assert "generate" in raw["stedgeai"] and "generate_st_app" in raw["stedgeai"]
    # the int8 levers of the generic export, and percentile ranges computed by the TFLite path
    # itself (not a min/max fallback), as docs/st-app.md says
    assert raw["calibration"]["method"] == {"onnx": "percentile", "tflite": "percentile"}
    assert raw["calibration"]["weights"]["method"] == "adaround"


@pytest.mark.slow
def test_st_export_raw_bytes_bit_identical_on_real_photos(st_export, ear210_all):
    """Raw camera bytes into the uint8 model == the host path (normalize + run_tflite), on every
    ear210 photo, bit for bit."""
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.runtimes import run_tflite, tflite_interpreter, tflite_output_map

    man = load_manifest(st_export)
    path, specs = man.artifact_path("int8_tflite"), man.output_specs("int8_tflite")
    it = tflite_interpreter(path)
    names = tflite_output_map(it, specs)
    d_in = it.get_input_details()[0]
    for name, img in ear210_all.items():
        canvas, _ = letterbox(img)
        host = run_tflite(path, normalize(canvas, "NHWC"), specs)[0]
        it.set_tensor(d_in["index"], canvas[None])  # the camera's bytes, untouched
        it.invoke()
        for idx, n in names.items():
            assert np.array_equal(it.get_tensor(idx), host[n]), (name, n)


@pytest.mark.slow
def test_st_export_st_app_bindings_equal_host_decode(st_export, ear210_all):
    """Both app bindings of the re-implemented ST post-processing == the host decode at the
    st-app profile on >= 99% of real frames (here: all)."""
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.runtimes import run_tflite, tflite_interpreter

    man = load_manifest(st_export)
    path, specs = man.artifact_path("int8_tflite"), man.output_specs("int8_tflite")
    anchors, cfg = man.anchors(), man.decode_config()
    quant = [d["quantization"] for d in tflite_interpreter(path).get_output_details()]
    canv = np.concatenate([normalize(letterbox(im)[0], "NHWC") for im in ear210_all.values()])
    raws = run_tflite(path, canv, specs)
    equal = {"index": 0, "size": 0}
    nonempty = 0
    for raw in raws:
        host = decode_outputs(raw, anchors, cfg, specs)
        rows = np.concatenate([host.scores[:, None], host.boxes], 1).reshape(-1, 5)
        nonempty += len(rows) > 0
        bufs = [raw[n] for n in ST_OUTPUT_ORDER]
        for b in equal:
            equal[b] += np.array_equal(st_reference_decode(bufs, quant, anchors, b, cfg), rows)
    assert nonempty >= 10
    assert equal["index"] == equal["size"] == len(raws)


@pytest.mark.slow
def test_st_app_package(st_export):
    from blazeear_edge.manifest import load_manifest

    man = load_manifest(st_export)
    pkg = st_export / "st_app"
    tfl = man.artifact("int8_tflite").path
    assert (pkg / tfl).read_bytes() == man.artifact_path("int8_tflite").read_bytes()
    h = (pkg / "app_config.h").read_text()
    vals = dict(re.findall(r"#define (\w+) \(?([^)\n]+)\)?", h))
    cfg = man.decode_config()
    assert float(vals["AI_FD_BLAZEFACE_PP_CONF_THRESHOLD"].rstrip("f")) == cfg.score_thresh
    assert float(vals["AI_FD_BLAZEFACE_PP_IOU_THRESHOLD"].rstrip("f")) == cfg.iou_thresh
    assert int(vals["AI_FD_BLAZEFACE_PP_MAX_BOXES_LIMIT"]) == cfg.max_detections
    assert "POSTPROCESS_TYPE" in vals
    gen = (pkg / "generate.txt").read_text()
    assert f"--model {tfl}" in gen and "user_neuralart_STM32N6570-DK.json" in gen
    assert "--input-data-type uint8" in gen
    readme = (pkg / "README.md").read_text()
    assert "git clone --branch v1.1.0" in readme and tfl in readme


def test_cli_st_app_needs_int8(run_cli, tmp_path):
    res = run_cli("export", "--st-app", "--out", str(tmp_path / "x"))
    assert res.code == 2 and "--int8" in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1
