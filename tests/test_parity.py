"""``parity``: every runtime of an export against the PyTorch model, the C decode against NumPy.

The default export must pass its default tolerances; deliberately broken copies (int8 ONNX weights
perturbed, output order swapped in the manifest, a wrong zero point) must fail with a message that
names the runtime and the tensor. Error arithmetic is checked against hand-computed values.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from blazeear_edge.cli import main
from blazeear_edge.errors import BlazeEarError
from blazeear_edge.parity import (INT8_DEFAULT, RUNTIME_LABELS, Tolerances, load_tolerances,
                                  run_parity, tensor_stats)
from blazeear_edge.postprocess import OutputSpec

OUTPUTS = ("regressors_16x16", "scores_16x16", "regressors_8x8", "scores_8x8")
#: astronaut + the first 11 LFW face crops of the built-in hold-out: 12 faces
FACES = 12


def _have_gcc() -> bool:
    try:
        from blazeear_edge.harness import find_tools
    except ImportError:
        return False
    return find_tools().cc is not None


@pytest.fixture(scope="module")
def full_report(default_export, tmp_path_factory):
    draw = tmp_path_factory.mktemp("parity_draw")
    return run_parity(default_export, draw_dir=draw, draw_count=3), draw


def _copy(default_export, tmp_path) -> Path:
    dst = tmp_path / "export"
    shutil.copytree(default_export, dst, ignore=shutil.ignore_patterns("calib.npz"))
    return dst


def _edit_manifest(d: Path, fn) -> None:
    p = d / "manifest.json"
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))


# ---------------------------------------------------------------------------------------------
# the default export
# ---------------------------------------------------------------------------------------------
def test_default_export_passes_default_tolerances(full_report):
    rep, _ = full_report
    assert rep.ok, rep.failures
    assert rep.reference == "PyTorch fp32"
    assert rep.images == 57  # astronaut + 16 portrait frames of her + 40 LFW crops
    keys = [r.key for r in rep.runtimes]
    assert keys == ["pytorch", "fp32_onnx", "fp32_tflite", "int8_onnx", "int8_tflite"]
    by = {r.key: r for r in rep.runtimes}
    ref_dets = by["pytorch"].detections
    assert ref_dets >= 20  # 20 face crops + the astronaut: the comparison is not vacuous
    for k in ("fp32_onnx", "fp32_tflite"):
        r = by[k]
        assert [t.name for t in r.tensors] == list(OUTPUTS)
        assert min(t.sqnr_db_relevant for t in r.tensors) > 80.0
        assert r.match.matched == r.match.ref == ref_dets and r.match.extra == 0
    for k in ("int8_onnx", "int8_tflite"):
        r = by[k]
        assert r.match.ref == ref_dets
        assert r.confident["missing"] <= INT8_DEFAULT.max_missing_rate * r.match.ref
        # int8 is not float: the raw outputs do differ (the comparison sees the int8 model)
        assert max(t.max_abs_err for t in r.tensors) > 1.0
    checks = {c.name: c for c in rep.checks}
    assert checks["manifest describes the artifacts"].status == "passed"
    c_checks = [c for n, c in checks.items() if n.startswith("C decode")]
    assert len(c_checks) == 2
    for c in c_checks:
        if _have_gcc():
            assert c.status == "passed", c.failures
            assert c.data["frames"] == 57 and c.data["matching"] == 57
        else:
            assert c.status == "not available" and "C harness: not available" in c.detail
    assert checks["device log == NumPy decode"].status == "not run"


def test_text_table_and_pictures(full_report):
    rep, draw = full_report
    text = rep.format_text()
    for label in RUNTIME_LABELS.values():
        assert label in text
    for name in OUTPUTS:
        assert name in text
    assert "raw outputs vs reference" in text and "detections vs reference" in text
    assert "tolerances" in text and "on-device checks" in text
    assert text.rstrip().splitlines()[-1].startswith("PASS")
    d = rep.to_dict()
    json.dumps(d)  # serialisable
    assert d["ok"] is True and len(d["runtimes"]) == 5
    # side-by-side pictures of the worst int8 images: two panels of the same size + a separator
    import cv2

    assert rep.drawn and all(Path(p).parent == draw for p in rep.drawn)
    img = cv2.imread(str(rep.drawn[0]))
    assert img is not None and img.shape[1] % 2 == 0 and img.shape[1] > img.shape[0]


def test_cli_json_exit_0(default_export, capsys):
    rc = main(["parity", str(default_export), "--count", "4", "--no-c", "--format", "json",
               "--runtimes", "int8_tflite"])
    out = capsys.readouterr().out
    d = json.loads(out)
    assert rc == 0 and d["ok"] is True
    assert [r["key"] for r in d["runtimes"]] == ["pytorch", "int8_tflite"]
    assert d["images"] == 4
    assert {c["status"] for c in d["checks"] if c["name"].startswith("C decode")} == {"not run"}


# ---------------------------------------------------------------------------------------------
# broken copies
# ---------------------------------------------------------------------------------------------
def test_perturbed_int8_onnx_weights_fail(default_export, tmp_path):
    import onnx
    from onnx import numpy_helper

    d = _copy(default_export, tmp_path)
    path = d / "blazeface_front_mediapipe_int8.onnx"
    m = onnx.load(str(path))
    rng = np.random.default_rng(0)
    n = 0
    for init in m.graph.initializer:
        if init.name.endswith("weight_quantized"):
            a = numpy_helper.to_array(init).astype(np.int32)
            a = np.clip(a + rng.integers(-3, 4, a.shape), -127, 127).astype(np.int8)
            init.CopyFrom(numpy_helper.from_array(a, init.name))
            n += 1
    assert n > 30
    onnx.save(m, str(path))
    rep = run_parity(d, count=FACES, c_check=False, runtimes=["int8_onnx", "int8_tflite"])
    assert not rep.ok
    by = {r.key: r for r in rep.runtimes}
    assert by["int8_onnx"].status == "FAIL"
    assert by["int8_tflite"].status == "ok"  # the untouched artifact still passes
    assert all(f.startswith("ONNX int8 (int8_onnx)") for f in by["int8_onnx"].failures)
    assert any(f"output {t}: SQNR" in f for f in by["int8_onnx"].failures for t in OUTPUTS)
    # the manifest check warns that the file changed since the export
    man = next(c for c in rep.checks if c.name.startswith("manifest"))
    assert any("changed since the export" in w for w in man.data.get("warnings", []))


def test_swapped_output_order_in_manifest_fails(default_export, tmp_path, capsys):
    d = _copy(default_export, tmp_path)

    def swap(m):
        o = m["artifacts"]["int8_tflite"]["outputs"]
        o[0], o[2] = o[2], o[0]

    _edit_manifest(d, swap)
    first = json.loads((d / "manifest.json").read_text())["artifacts"]["int8_tflite"]["outputs"]
    rc = main(["parity", str(d), "--count", "2", "--no-c", "--runtimes", "int8_tflite"])
    text = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in text
    lines = [ln for ln in text.splitlines() if "wrong output order" in ln]
    assert len(lines) == 2
    assert all("TFLite int8 (int8_tflite)" in ln for ln in lines)
    assert any(f"'{first[0]['name']}'" in ln for ln in lines)


def test_wrong_zero_point_fails(default_export, tmp_path):
    d = _copy(default_export, tmp_path)
    old = {}

    def zp(m):
        for o in m["artifacts"]["int8_tflite"]["outputs"]:
            if o["name"] == "regressors_16x16":
                old["zp"] = o["zero_point"]
                o["zero_point"] = 0  # "forgot the zero point"

    _edit_manifest(d, zp)
    assert old["zp"] != 0
    rep = run_parity(d, count=FACES, c_check=False, runtimes=["int8_tflite"])
    assert not rep.ok
    fails = rep.failures
    # the manifest check reads the true zero point back from the interpreter ...
    assert any("TFLite int8 (int8_tflite): output regressors_16x16: manifest scale" in f
               and f"/ {old['zp']}" in f for f in fails)
    # ... and the numbers see it too: the decode with the wrong zero point moves every box
    assert any(f.startswith("TFLite int8 (int8_tflite): output regressors_16x16: SQNR")
               for f in fails)


def test_tightened_tolerances_fail_and_name_the_limit(default_export, tmp_path):
    p = tmp_path / "tol.json"
    p.write_text(json.dumps({"int8": {"min_mean_iou": 0.999}}))
    tol = load_tolerances(p)
    assert tol.int8.min_mean_iou == 0.999
    assert tol.fp32.min_mean_iou == Tolerances().fp32.min_mean_iou  # untouched
    rep = run_parity(default_export, count=FACES, tolerances=tol, c_check=False,
                     runtimes=["int8_tflite"])
    assert any(f.startswith("TFLite int8 (int8_tflite): detections: mean IoU") for f in
               rep.failures)


@pytest.mark.parametrize("content, match", [
    ({"int9": {}}, "unknown section"),
    ({"int8": {"min_iou": 1}}, "unknown key"),
    ({"fp32": {"min_sqnr_db": "high"}}, "must be a number"),
])
def test_tolerance_file_errors(tmp_path, content, match):
    p = tmp_path / "tol.json"
    p.write_text(json.dumps(content))
    with pytest.raises(BlazeEarError, match=match):
        load_tolerances(p)


# ---------------------------------------------------------------------------------------------
# arithmetic against hand-computed values
# ---------------------------------------------------------------------------------------------
def test_tensor_stats_hand_computed():
    ref_specs = [OutputSpec("r", "regressors", 0, 896, shape=(1, 896, 16)),
                 OutputSpec("s", "scores", 0, 896, shape=(1, 896, 1))]
    q_specs = [OutputSpec("r", "regressors", 0, 896, "int8", 0.5, 2, (1, 896, 16)),
               OutputSpec("s", "scores", 0, 896, "int8", 0.25, -4, (1, 896, 1))]
    logits = np.full((1, 896, 1), -10.0, np.float32)
    logits[0, :2, 0] = 3.0  # two relevant anchors (score >= 0.05)
    regs = np.ones((1, 896, 16), np.float32)
    ref = [{"r": regs, "s": logits}]
    # r: q = 4 -> (4 - 2) * 0.5 = 1.0 everywhere except anchor 0, column 0: q = 5 -> 1.5
    qr = np.full((1, 896, 16), 4, np.int8)
    qr[0, 0, 0] = 5
    # s: exact: q = logit / 0.25 - 4
    qs = (logits / 0.25 - 4).astype(np.int8)
    st = {t.name: t for t in tensor_stats(ref, [{"r": qr, "s": qs}], ref_specs, q_specs)}
    r = st["r"]
    assert r.max_abs_err == pytest.approx(0.5)
    assert r.mean_abs_err == pytest.approx(0.5 / (896 * 16))
    # SQNR over all anchors: 10 log10(896 * 16 * 1^2 / 0.5^2)
    assert r.sqnr_db == pytest.approx(10 * np.log10(896 * 16 / 0.25))
    # relevant anchors 0 and 1: 32 values, one error of 0.5
    assert r.sqnr_db_relevant == pytest.approx(10 * np.log10(32 / 0.25))
    assert r.max_abs_err_relevant == pytest.approx(0.5)
    assert st["s"].max_abs_err == 0 and st["s"].sqnr_db == float("inf")


# ---------------------------------------------------------------------------------------------
# C harness and device log
# ---------------------------------------------------------------------------------------------
def test_c_harness_missing_is_not_available_never_passed(default_export, monkeypatch):
    """A missing compiler (the only external part of the C check) is "not available"."""
    monkeypatch.setenv("BLAZEEAR_CC", "no-such-compiler-here")
    rep = run_parity(default_export, count=2, runtimes=["int8_tflite"])
    c = next(c for c in rep.checks if c.name.startswith("C decode"))
    assert c.status == "not available" and c.detail.startswith("C harness: not available")
    assert "gcc" in c.detail
    assert "passed" not in c.status
    assert "C harness: not available" in rep.format_text()


@pytest.mark.skipif(not _have_gcc(), reason="gcc not found (apt-get install -y gcc)")
def test_device_log_equal_and_tampered(default_export, tmp_path):
    from blazeear_edge.harness import export_outputs, harness_model, make_vectors, run_harness
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.parity import load_parity_images

    man = load_manifest(default_export)
    hm = harness_model(man)
    ims, _ = load_parity_images(None, count=6)
    vecs = make_vectors(hm, export_outputs(man, hm, ims.nhwc, ims.nchw), names=ims.names,
                        letterboxes=ims.letterboxes)
    run_harness(hm, vecs, tmp_path / "h", targets=("host",))
    log = tmp_path / "h" / "device_host.log"
    assert sum(len(v.expected) for v in vecs) >= 4  # detections to compare
    rep = run_parity(default_export, count=6, device_log=log, c_check=False,
                     runtimes=["int8_tflite"])
    c = next(c for c in rep.checks if c.name.startswith("device log"))
    assert c.status == "passed", c.failures
    assert c.data["frames_compared"] == 6
    # tamper with the first detection's score: the check names the frame
    lines = log.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if "blazeear det " in ln)
    tok = next(t for t in lines[i].split() if t.startswith("score="))
    lines[i] = lines[i].replace(tok, "score=0.123")
    bad = tmp_path / "tampered.log"
    bad.write_text("\n".join(lines) + "\n")
    rep = run_parity(default_export, count=6, device_log=bad, c_check=False,
                     runtimes=["int8_tflite"])
    c = next(c for c in rep.checks if c.name.startswith("device log"))
    assert c.status == "FAILED" and not rep.ok
    assert any("score error" in f and "frame" in f for f in c.failures)
