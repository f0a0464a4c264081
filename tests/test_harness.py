"""The firmware harness: the C post-processing against the NumPy decode.

The reference is ``blazeear_edge.postprocess`` (NumPy), an independent implementation; the C code
runs natively (gcc, AddressSanitizer + UBSan) and on an emulated Cortex-M55 (QEMU mps3-an547).
Test vectors: the PyTorch model's outputs on real photos (scikit-image, ear210 when present),
quantised to int8 with per-tensor scales from their range (the way an int8 export's outputs look),
plus hand-built cases. The Arm toolchain tests skip when it is absent; CI installs it with
``apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm``.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from blazeear_edge.errors import BlazeEarError
from blazeear_edge.harness import (APT_LINE, Tools, build_board_stub, compare_frame, find_tools,
                                   harness_model, make_vectors, minimal_manifest, model_header,
                                   parse_device_log, quantize_outputs, quantize_specs,
                                   read_device_log, run_harness, synthetic_vectors,
                                   torch_float_outputs)
from blazeear_edge.postprocess import CONCAT_OUTPUTS, SPLIT_OUTPUTS, DecodeConfig

TOOLS = find_tools()
NEED_HOST = pytest.mark.skipif(TOOLS.cc is None, reason="gcc not found (apt-get install -y gcc)")
NEED_M55 = pytest.mark.skipif(
    bool(TOOLS.missing("m55")),
    reason=f"Arm toolchain / QEMU missing ({', '.join(TOOLS.missing('m55'))}): {APT_LINE}")


# ---------------------------------------------------------------------------------------------
# vectors from real images
# ---------------------------------------------------------------------------------------------
def _mosaic(faces):
    """Four LFW faces (128x128 RGB) in a 2x2 grid: a real image with several faces."""
    return np.concatenate([np.concatenate(faces[:2], 1), np.concatenate(faces[2:4], 1)], 0)


@pytest.fixture(scope="module")
def real(real_images, lfw_faces):
    """name -> RGB image; PyTorch float outputs, letterboxes and the anchor table."""
    images = dict(real_images)
    images["lfw_mosaic_4faces"] = _mosaic(lfw_faces)
    names = list(images)
    outs, lbs, anchors = torch_float_outputs([images[n] for n in names])
    return names, outs, lbs, anchors


@pytest.fixture(scope="module")
def split_model(real):
    names, outs, lbs, anchors = real
    specs = quantize_specs(outs, SPLIT_OUTPUTS)
    return harness_model(minimal_manifest(specs, anchors, name="pytorch_int8_split"))


@pytest.fixture(scope="module")
def split_vectors(real, split_model):
    names, outs, lbs, anchors = real
    q = [quantize_outputs(o, split_model.specs) for o in outs]
    vecs = make_vectors(split_model, q, names=names, letterboxes=lbs, source="pytorch")
    # the same frames with hard NMS and a cap of one detection
    vecs += make_vectors(split_model, q[:3], names=[f"{n}_hard_max1" for n in names[:3]],
                         letterboxes=lbs[:3], config=DecodeConfig(nms="hard", max_detections=1),
                         source="pytorch")
    return vecs + synthetic_vectors(split_model)


@pytest.fixture(scope="module")
def split_report(tmp_path_factory, split_model, split_vectors):
    if TOOLS.cc is None:
        pytest.skip("gcc not found (apt-get install -y gcc)")
    targets = ("host",) if TOOLS.missing("m55") else ("host", "m55")
    out = tmp_path_factory.mktemp("harness_split")
    return run_harness(split_model, split_vectors, out, targets, tools=TOOLS)


def test_vectors_are_not_vacuous(split_vectors):
    real = [v for v in split_vectors if v.source == "pytorch" and v.config is None]
    assert len(real) == 8
    assert sum(len(v.expected) for v in real) >= 6  # astronaut, faces, the 4-face mosaic
    mosaic = next(v for v in real if v.name == "lfw_mosaic_4faces")
    assert len(mosaic.expected) == 4
    by = {v.name: len(v.expected) for v in split_vectors}
    assert by["empty"] == 0 and by["below_threshold"] == 0
    assert by["crowd"] > 3 and by["crowd_hard_max3"] == 3
    assert by["all_levels_every_score"] == 896
    assert by["zero_area"] == 1  # weighted NMS stops after a zero-area top box
    assert by["edge_letterbox"] >= 4


@NEED_HOST
def test_host_identical_to_numpy(split_report, split_vectors):
    res = split_report.results["host"]
    assert len(res) == len(split_vectors)
    bad = [(r.name, r.problem) for r in res if not r.match]
    assert not bad
    assert split_report.bit_exact("host")  # not merely within 1e-5 / 1e-6
    assert split_report.max_errors("host") == (0.0, 0.0)
    log = split_report.logs["host"]
    assert log.complete and log.status == 0
    # the int8 pre-filter keeps exactly the logits whose float score passes
    tl = log.by_name()["threshold_levels"]
    assert tl.fields["prefiltered"] == tl.fields["candidates"] > 0


@NEED_M55
def test_m55_identical_to_numpy(split_report, split_vectors):
    res = split_report.results["m55"]
    bad = [(r.name, r.problem) for r in res if not r.match]
    assert not bad
    assert split_report.bit_exact("m55")
    log = split_report.logs["m55"]
    assert log.instructions_per_tick() == pytest.approx(31.25, rel=1e-3)  # -icount shift=0
    real = [r for r, v in zip(res, split_vectors) if v.source == "pytorch"]
    ins = [r.instructions for r in real]
    assert all(1_000 < i < 100_000 for i in ins), ins  # the goal: under 100,000
    assert all(r.instructions_decode + r.instructions_nms <= r.instructions + 64 for r in real)


@NEED_M55
def test_m55_deterministic_counts(split_report):
    """-icount shift=0: the same frame costs the same ticks (empty vs below_threshold scan the
    same 896 logits with nothing passing)."""
    f = split_report.logs["m55"].by_name()
    assert abs(f["empty"].fields["ticks"] - f["below_threshold"].fields["ticks"]) <= 2


def test_cap_and_edge_vectors_are_not_vacuous(split_vectors, split_model):
    """The hand-built cap and threshold cases decode to what their names say (NumPy side)."""
    by = {v.name: v for v in split_vectors}
    k = split_model.config.max_candidates
    assert k == DecodeConfig().max_candidates > 0
    # every anchor above the threshold: the cap binds and nothing merges
    assert len(by["all_above_disjoint"].expected) == k
    for name in ("cap_ties", "cap_ties_hard"):
        v = by[name]
        assert v.config.max_candidates == 6 and len(v.expected) == 6
    for name in ("iou_at_threshold", "iou_at_threshold_hard"):
        v = by[name]
        assert len(v.expected) == 2  # IoU == threshold: not suppressed, not merged
        nudged = replace(v.config, iou_thresh=float(np.nextafter(np.float32(
            v.config.iou_thresh), np.float32(0))))
        again = make_vectors(split_model, [v.outputs], config=nudged)[0]
        assert len(again.expected) == 1  # just below the IoU: merged / suppressed


@NEED_HOST
def test_cap_keeps_the_lowest_anchors_among_tied_scores_in_c(split_report, split_vectors):
    """cap_ties: scores 7, 7, then six candidates at 5 of which the cap of 6 keeps four (an
    invalid box scored 9 does not count): the C log names the anchors."""
    v = next(v for v in split_vectors if v.name == "cap_ties")
    for t in split_report.logs:
        fr = split_report.logs[t].by_name()["cap_ties"]
        a0 = 2 * (16 * 4 + 2)
        picked = sorted(int(a) for a in fr.anchors)
        assert picked == [a0 + 6 * j for j in range(1, 7)], t
        assert fr.fields["passed"] == 10 and fr.fields["candidates"] == 6
        assert fr.fields["capped"] == 1
        assert compare_frame(v.expected, fr.detections)[2]


@NEED_M55
def test_m55_worst_case_is_bounded_by_the_cap(split_report, split_vectors):
    """Every anchor above the threshold, nothing merging: at most 1.5 M instructions with the
    default cap (QEMU -icount counts instructions, deterministically; 18 M without a cap)."""
    from blazeear_edge.harness import format_report, worst_case

    r, k = worst_case(split_report)
    assert k == DecodeConfig().max_candidates and r.expected == k and r.match
    assert 200_000 < r.instructions <= 1_500_000
    assert "M55 worst case (all_above_disjoint" in format_report(split_report)


# ---------------------------------------------------------------------------------------------
# other layouts, the board skeleton, ear210
# ---------------------------------------------------------------------------------------------
@NEED_HOST
def test_concat_uint8_layout_host(tmp_path, real):
    """MediaPipe's two concatenated outputs, as uint8, in reversed order (classificators
    first): the C code takes any tensor order, either dtype."""
    names, outs, lbs, anchors = real
    cat = [[np.concatenate([o[1], o[3]], 1), np.concatenate([o[0], o[2]], 1)] for o in outs]
    specs = quantize_specs(cat, [CONCAT_OUTPUTS[1], CONCAT_OUTPUTS[0]], dtype="uint8")
    model = harness_model(minimal_manifest(specs, anchors, name="concat_uint8"))
    vecs = make_vectors(model, [quantize_outputs(c, specs) for c in cat], names=names,
                        letterboxes=lbs) + synthetic_vectors(model)
    rep = run_harness(model, vecs, tmp_path, ("host",), tools=TOOLS)
    assert rep.ok and rep.bit_exact("host"), [r.problem for r in rep.results["host"]]
    assert sum(len(v.expected) for v in vecs[:len(names)]) >= 6


@NEED_HOST
def test_board_skeleton_against_stai_stand_in(split_report, split_vectors):
    """board/app_main.c compiles (-Werror, sanitizers) against the stai stand-in and, fed the
    vectors as network outputs, logs what NumPy gives (first 16: its output buffer)."""
    exe = build_board_stub(split_report.out_dir, TOOLS)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                       env={"ASAN_OPTIONS": "detect_leaks=0"})
    assert r.returncode == 0 and not r.stderr, r.stderr[:500]
    log = parse_device_log(r.stdout, "board stub")
    assert log.complete and len(log.frames) == len(split_vectors)
    from blazeear_edge.postprocess import Detections

    checked = 0
    for vec, fr in zip(split_vectors, log.frames):
        if vec.config is not None:
            continue  # the board uses the model's decode configuration
        e = vec.expected
        k = min(len(e), 16)
        head = Detections(e.boxes[:k], e.keypoints[:k], e.scores[:k])
        assert compare_frame(head, fr.detections)[2], vec.name  # bit-exact
        checked += 1
    assert checked >= 10


@NEED_HOST
def test_capacity_error_is_logged_not_crashed(tmp_path, split_model, split_vectors):
    """With room for 50 candidates, a frame with more logs an error line (status -3), the others
    still match, and the comparison reports the failed frame."""
    from blazeear_edge.harness import build_host, compare_log, prepare, run_host

    vecs = [v for v in split_vectors if v.name in ("astronaut", "crowd", "ties")]
    assert len(vecs) == 3
    prepare(tmp_path, split_model, vecs)
    exe = build_host(tmp_path, True, TOOLS, defines=("BLAZEEAR_PP_MAX_CANDIDATES=50",))
    log = parse_device_log(run_host(exe))
    assert log.status == 1
    res = {r.name: r for r in compare_log(vecs, log)}
    assert res["crowd"].problem == "C error code -3" and not res["crowd"].match
    assert res["astronaut"].match and res["ties"].match


@NEED_HOST
def test_ear210_images(tmp_path, ear210_images, split_model):
    outs, lbs, _ = torch_float_outputs(ear210_images)
    specs = quantize_specs(outs, SPLIT_OUTPUTS)
    model = harness_model(minimal_manifest(specs, split_model.anchors, name="ear210"))
    vecs = make_vectors(model, [quantize_outputs(o, specs) for o in outs],
                        names=[f"ear210_{i}" for i in range(len(outs))], letterboxes=lbs)
    targets = ("host",) if TOOLS.missing("m55") else ("host", "m55")
    rep = run_harness(model, vecs, tmp_path, targets, tools=TOOLS)
    for t in targets:
        assert rep.bit_exact(t) and all(r.match for r in rep.results[t])


# ---------------------------------------------------------------------------------------------
# pieces checked on their own
# ---------------------------------------------------------------------------------------------
C_PROBE = r"""
#include <stdio.h>
#include <stdlib.h>
#include "blazeear_log.h"
#include "blazeear_pp.h"
int main(int argc, char **argv)
{
    char buf[32];
    float v;
    (void)argv;
    if (argc > 1) { /* qmin: lines "dtype scale zp thresh clip" */
        int dtype, zp;
        float scale, thresh, clip;
        while (scanf("%d %a %d %a %a", &dtype, &scale, &zp, &thresh, &clip) == 5) {
            blazeear_pp_tensor_t t = {BLAZEEAR_PP_SCORES, 0, 0, 1, 0.0f, 0};
            blazeear_pp_config_t c = {0.5f, 0.3f, 100.0f, 0, 0, 128.0f, 128.0f, 128.0f, 128.0f,
                                      0, 0};
            t.dtype = dtype; t.scale = scale; t.zero_point = zp;
            c.score_thresh = thresh; c.score_clip = clip;
            printf("%d\n", (int)blazeear_pp_score_qmin(&t, &c));
        }
        return 0;
    }
    while (scanf("%a", &v) == 1) { /* hexfloat formatter */
        blazeear_log_hexfloat(buf, v);
        puts(buf);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    if TOOLS.cc is None:
        pytest.skip("gcc not found (apt-get install -y gcc)")
    from blazeear_edge.harness import firmware_dir

    d = tmp_path_factory.mktemp("probe")
    (d / "probe.c").write_text(C_PROBE)
    fw = firmware_dir()
    exe = d / "probe"
    subprocess.run([TOOLS.cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                    "-O2", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    f"-I{fw}", str(d / "probe.c"), str(fw / "blazeear_pp.c"),
                    str(fw / "blazeear_log.c"), "-lm", "-o", str(exe)], check=True)
    return exe


def _run_probe(exe, text, *args):
    r = subprocess.run([str(exe), *args], input=text, capture_output=True, text=True,
                       timeout=60, env={"ASAN_OPTIONS": "detect_leaks=0"})
    assert r.returncode == 0 and not r.stderr, r.stderr
    return r.stdout.split()


def test_hexfloat_formatter_is_exact(probe):
    special = [0.0, -0.0, 1.0, -1.5, 0.1, 1e-45, 1.17549435e-38, 3e-39, 3.4028235e38, 128.0,
               np.inf, -np.inf]
    rng = np.random.default_rng(1)
    vals = np.concatenate([np.float32(special),
                           rng.standard_normal(2000).astype(np.float32) * 100,
                           rng.integers(0, 2**32, 2000, dtype=np.uint64).astype(np.uint32)
                           .view(np.float32)])
    vals = vals[np.isfinite(vals) | np.isinf(vals)]  # no NaN payloads
    text = "\n".join(float(v).hex() for v in vals)
    out = _run_probe(probe, text)
    back = np.array([float.fromhex(s) for s in out], np.float32)
    assert (back.view(np.uint32) == vals.view(np.uint32)).all()  # sign of zero included


def test_int8_prefilter_equals_float_threshold(probe):
    """qmin from the C code (ST's formula, stepped to exactness) against the NumPy definition:
    the smallest level whose float score passes, over many scales, zero points, thresholds."""
    from blazeear_edge.postprocess import dequantize, sigmoid_scores

    rng = np.random.default_rng(7)
    cases = []
    for thresh in [0.0, 1e-30, 1e-6, 0.05, 0.3, 0.5, 0.5000001, 0.75, 0.9, 0.99999, 1.0 - 2**-24,
                   1.0, 1.5]:
        for _ in range(12):
            dtype = int(rng.integers(0, 2))
            scale = float(np.float32(10 ** rng.uniform(-4, 1)))
            zp = int(rng.integers(-128, 128) if dtype == 0 else rng.integers(0, 256))
            clip = float(rng.choice([100.0, 16.0, 3.0]))
            cases.append((dtype, scale, zp, thresh, clip))
    text = "\n".join(f"{d} {float(np.float32(s)).hex()} {z} {float(np.float32(t)).hex()} "
                     f"{float(np.float32(c)).hex()}" for d, s, z, t, c in cases)
    got = [int(v) for v in _run_probe(probe, text, "qmin")]
    for (dtype, scale, zp, thresh, clip), q in zip(cases, got):
        np_dtype = np.int8 if dtype == 0 else np.uint8
        info = np.iinfo(np_dtype)
        levels = np.arange(info.min, info.max + 1)
        s = sigmoid_scores(dequantize(levels.astype(np_dtype), scale, zp), clip)
        passing = levels[s >= np.float32(thresh)]
        want = int(passing[0]) if passing.size else info.max + 1
        assert q == want, (dtype, scale, zp, thresh, clip)
        assert (np.diff(passing) == 1).all()  # monotone: the kept set is a range


def test_model_header(split_model):
    h = model_header(split_model)
    assert h.count("{BLAZEEAR_PP_") == 4
    import re

    lits = [float.fromhex(m) for m in re.findall(r"(-?0x[0-9a-f.]+p[+-]\d+)f", h)]
    for s in split_model.specs:  # scales written exactly
        assert float(np.float32(s.scale)) in lits
    assert "static const float blazeear_model_anchors[896][4]" in h
    assert "BLAZEEAR_INPUT_IS_FLOAT 1" in h
    # an int8 input gets the camera-pixel table q = clip(round(x / s) + zp) of the host's float32
    # values x = p / 127.5 - 1 (what the host runtimes quantise: preprocess.quantize_values)
    m = replace(split_model, input={"dtype": "int8", "scale": 1 / 127.5, "zero_point": -1})
    h = model_header(m)
    lut = h.split("blazeear_input_lut[256] = {")[1].split("};")[0]
    vals = [int(v) for v in lut.replace("\n", " ").replace(",", " ").split()]
    x = np.arange(256, dtype=np.float32) / np.float32(127.5) - np.float32(1.0)
    assert vals == list(np.clip(np.round(x / np.float32(1 / 127.5)) - 1, -128, 127).astype(int))
    # the camera-exact uint8 input: q = p, no table arithmetic at all
    h = model_header(replace(split_model, input={"dtype": "uint8", "scale": 1 / 255,
                                                 "zero_point": 0}))
    assert "#define BLAZEEAR_INPUT_PIXEL_OFFSET 0" in h


def test_harness_model_errors(split_model):
    float_specs = [s.to_dict() for s in SPLIT_OUTPUTS]  # float32 outputs, no quantisation
    with pytest.raises(BlazeEarError, match="not int8"):
        harness_model({"artifacts": {"fp32": {"outputs": float_specs}}},
                      artifact="fp32", anchors=split_model.anchors)
    gap = [s.to_dict() for s in split_model.specs[:3]]  # scores_8x8 missing
    with pytest.raises(BlazeEarError, match="cover"):
        harness_model({"artifacts": {"int8_tflite": {"outputs": gap}}},
                      anchors=split_model.anchors)
    with pytest.raises(BlazeEarError, match="no int8 artifact"):
        harness_model({"artifacts": {}}, anchors=split_model.anchors)
    with pytest.raises(BlazeEarError, match="int8"):
        make_vectors(split_model, [[np.zeros((512, 16), np.float32)] * 4])


def test_missing_tools_name_the_apt_packages(tmp_path, split_model, split_vectors):
    none = Tools(None, None, None, False)
    with pytest.raises(BlazeEarError, match="gcc-arm-none-eabi libnewlib-arm-none-eabi "
                                            "qemu-system-arm"):
        run_harness(split_model, split_vectors[:1], tmp_path, ("m55",), tools=none)
    with pytest.raises(BlazeEarError, match="gcc"):
        run_harness(split_model, split_vectors[:1], tmp_path, ("host",), tools=none)
    assert not any(tmp_path.iterdir())  # fails before writing anything


# ---------------------------------------------------------------------------------------------
# the device-log reader
# ---------------------------------------------------------------------------------------------
LOG = """\
boot banner, ignored
[00:01.2] blazeear begin version=1 model=m nms=weighted score_thresh=0x1p-1 iou_thresh=0.3 max_detections=0 frames=2
blazeear frame index=0 name=a dets=2 space=input prefiltered=5 candidates=4 ticks=100
blazeear det frame=0 i=0 anchor=7 score=0x1.8p-1 box=0x1p-2,0.25,0x1.8p-1,0.75 keypoints=0,0,1,1,2,2,3,3,4,4,5,5
blazeear det frame=0 i=1 anchor=9 score=0.5 box=-0x0p+0,0,1,1 keypoints=0,0,0,0,0,0,0,0,0,0,0,0
blazeear frame index=1 name=b dets=0 space=image letterbox=640,480,128,96,0,16,128
blazeear end frames=2 status=0 calib_instr=2000000 calib_ticks=64000
"""


def test_device_log_reader(tmp_path):
    p = tmp_path / "device.log"
    p.write_text(LOG)
    log = read_device_log(p)
    assert log.complete and log.status == 0 and log.header["model"] == "m"
    assert log.header["score_thresh"] == 0.5
    a, b = log.frames
    assert (a.index, a.name, len(a.detections), a.space) == (0, "a", 2, "input")
    assert a.detections.scores.tolist() == [0.75, 0.5]
    assert a.detections.boxes[0].tolist() == [0.25, 0.25, 0.75, 0.75]
    assert np.signbit(a.detections.boxes[1, 0])  # -0.0 kept
    assert a.detections.keypoints.shape == (2, 6, 2) and a.detections.keypoints[0, 5, 1] == 5
    assert a.anchors.tolist() == [7, 9] and a.fields["candidates"] == 4
    assert log.instructions(a) == pytest.approx(100 * 31.25)
    assert b.space == "image" and b.letterbox.pad_y == 16 and len(b.detections) == 0


@pytest.mark.parametrize("bad, match", [
    (LOG.replace("dets=2", "dets=3"), "announces 3"),
    (LOG.replace("score=0.5", "score=half"), "not a number"),
    (LOG.replace("version=1", "version=2"), "version 2"),
    (LOG.replace("i=1 ", "i=4 "), "out of order"),
    ("blazeear det frame=0 i=0 score=1 box=0,0,1,1 keypoints=" + ",".join("0" * 12), "outside"),
    (LOG.replace("box=-0x0p+0,0,1,1", "box=0,1,1"), "expected 4"),
    ("no log here\n", "no device-log lines"),
])
def test_device_log_reader_errors(tmp_path, bad, match):
    p = tmp_path / "bad.log"
    p.write_text(bad)
    with pytest.raises(BlazeEarError, match=match):
        read_device_log(p)


def test_device_log_missing_file(tmp_path):
    with pytest.raises(BlazeEarError, match="not found"):
        read_device_log(tmp_path / "nope.log")


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def fake_export(tmp_path, split_model):
    """An export folder (manifest.json + anchors.npy) whose int8 artifact is not run: the test
    replaces export_outputs with the PyTorch-quantised outputs."""
    d = tmp_path / "export"
    d.mkdir()
    np.save(d / "anchors.npy", split_model.anchors)
    m = minimal_manifest(split_model.specs, split_model.anchors, name="fake")
    m["anchors"] = {"file": "anchors.npy", "count": 896}
    m["artifacts"]["int8_tflite"]["path"] = "fake_int8.tflite"
    (d / "manifest.json").write_text(json.dumps(m))
    return d


@NEED_HOST
def test_cli_harness_host(run_cli, fake_export, tmp_path, monkeypatch, real, split_model):
    import blazeear_edge.harness as harness

    names, outs, lbs, anchors = real

    def fake_outputs(manifest, model, nhwc, nchw=None):
        return [quantize_outputs(o, model.specs) for o in outs[:len(nhwc)]]

    monkeypatch.setattr(harness, "export_outputs", fake_outputs)
    res = run_cli("harness", fake_export, "--host", "--count", 2, "--out", tmp_path / "fw",
                  "--json", tmp_path / "r.json")
    assert res.code == 0, res.err
    assert "identical to NumPy (bit-exact)" in res.out
    assert "skimage:astronaut" in res.out and "exact" in res.out
    assert (tmp_path / "fw" / "src" / "blazeear_model.h").is_file()
    assert (tmp_path / "fw" / "Makefile").is_file()
    assert json.loads((tmp_path / "r.json").read_text())["host"][0]["bit_exact"]


def test_cli_harness_bad_input(run_cli, tmp_path, fake_export):
    res = run_cli("harness", tmp_path / "missing")
    assert res.code == 2 and "no export manifest" in res.err
    m = json.loads((fake_export / "manifest.json").read_text())
    m["artifacts"] = {"fp32_onnx": {"outputs": [s.to_dict() for s in SPLIT_OUTPUTS]}}
    (fake_export / "manifest.json").write_text(json.dumps(m))
    res = run_cli("harness", fake_export)  # a damaged manifest: the field is named
    assert res.code == 2 and "artifacts.fp32_onnx.path" in res.err and "Traceback" not in res.err
    m["artifacts"]["fp32_onnx"]["path"] = "m_fp32.onnx"
    (fake_export / "manifest.json").write_text(json.dumps(m))
    res = run_cli("harness", fake_export)
    assert res.code == 2 and "no int8 artifact" in res.err
    res = run_cli("harness", fake_export, "--run", "none")
    assert res.code == 2 and "--out" in res.err


def test_firmware_sources_ship_in_the_package():
    from blazeear_edge.harness import firmware_dir

    fw = firmware_dir()
    for f in ("blazeear_pp.c", "blazeear_pp.h", "blazeear_log.c", "host/main.c", "m55/an547.ld",
              "m55/startup.c", "board/app_main.c", "board/stai_stub/stai.h", "README.md"):
        assert (fw / f).is_file(), f
    # pyproject's package-data globs cover every file type the harness needs
    tomllib = pytest.importorskip("tomllib")

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = data["package-data"]["*"]
    for f in fw.rglob("*"):
        if f.is_file():
            assert any(f.match(g) for g in globs), f


@NEED_HOST
def test_cli_harness_on_the_real_default_export(run_cli, default_export, tmp_path):
    """The exported int8 TFLite's own outputs on real images, decoded in C (host, and the M55
    when the cross tools are present) and in NumPy: identical."""
    args = ["harness", str(default_export), "--count", "4", "--json", str(tmp_path / "r.json")]
    if TOOLS.missing("m55"):
        args.append("--host")
    res = run_cli(*args)
    assert res.code == 0, res.err
    assert "bit-exact" in res.out
    rows = json.loads((tmp_path / "r.json").read_text())
    assert rows
