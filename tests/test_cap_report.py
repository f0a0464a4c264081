"""The candidate cap never changes a host result silently, and no verdict hides a large change at
the deployed threshold (issue 21, sections 3 and 4).

References: the step-by-step functions of ``postprocess`` (``sigmoid_scores``, ``decode_boxes``,
``nms`` with its own cap), which share no code with the fast decode the product runs, and
hand-built outputs whose detections are known by construction.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from blazeear_edge.capreport import CapStats, cap_stats
from blazeear_edge.compare import INT8_DEFAULT, RuntimeResult, compare_runtime
from blazeear_edge.postprocess import (DEFAULT_MAX_CANDIDATES, SPLIT_OUTPUTS, DecodeConfig, decode_boxes, join_outputs,
                                       nms, sigmoid_scores)

f32 = np.float32
#: 896 anchors on a 32 x 28 grid, 4 px apart in the 128 input
GRID = np.array([[(i % 32 + 0.5) / 32, (i // 32 + 0.5) / 28, 1.0, 1.0] for i in range(896)], f32)


def split(regs: np.ndarray, logits: np.ndarray) -> dict:
    """(896, 16) regressors + (896,) logits -> the four split outputs."""
    out = {}
    for s in SPLIT_OUTPUTS:
        sl = slice(s.anchor_start, s.anchor_start + s.anchor_count)
        out[s.name] = (regs[sl] if s.kind == "regressors" else logits[sl, None])[None].copy()
    return out


def frame(on: dict, size_px: float = 2.0, jitter=None):
    """{anchor: logit} -> split outputs; every box is ``size_px`` wide at its anchor (``jitter``:
    (896, 2) centre offsets in pixels)."""
    regs = np.zeros((896, 16), f32)
    regs[:, 2:4] = size_px
    if jitter is not None:
        regs[:, 0:2] = jitter
    logits = np.full(896, -20.0, f32)
    for a, lg in on.items():
        logits[a] = lg
    return split(regs, logits)


def reference(outputs: dict, cfg: DecodeConfig, k: int):
    """Independent: (valid candidates, detections without the cap, detections with cap k)."""
    regs, logits = join_outputs(outputs)
    s = sigmoid_scores(logits, cfg.score_clip)
    keep = s >= f32(cfg.score_thresh)
    b, kp = decode_boxes(regs[keep], GRID[keep], cfg)
    ok = (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
    b, kp, s = b[ok], kp[ok], s[keep][ok]
    return (len(s), nms(b, kp, s, cfg.iou_thresh, cfg.nms, max_candidates=0),
            nms(b, kp, s, cfg.iou_thresh, cfg.nms, max_candidates=k))


# ---------------------------------------------------------------------------------------------
# the cap report against an independent uncapped decode
# ---------------------------------------------------------------------------------------------
CLUSTER = list(range(300, 340))


def _onto(anchors):
    """Centre offsets (pixels) moving the boxes of ``anchors`` onto the first one's centre,
    0.1 px apart."""
    jit = np.zeros((896, 2), f32)
    c0 = GRID[anchors[0], :2] * 128
    for i, a in enumerate(anchors):
        jit[a] = c0 - GRID[a, :2] * 128 + 0.1 * i
    return jit


@pytest.mark.parametrize("kind", ["hard", "weighted"])
def test_cap_stats_match_an_independent_uncapped_decode(kind):
    rng = np.random.default_rng(3)
    k = 20
    cfg = DecodeConfig(score_thresh=0.5, nms=kind, max_candidates=k)
    far = rng.choice(896, 150, replace=False)
    frames = [
        frame({int(a): float(rng.uniform(0.5, 6)) for a in far}),  # 150 separate boxes: binds
        frame({int(a): 3.0 - 0.1 * i for i, a in enumerate(far[:5])}),  # 5: never binds
        # 40 boxes of 60 px moved onto one spot (0.1 px apart): binds; hard NMS keeps one top
        frame({a: 5.0 - 0.05 * i for i, a in enumerate(CLUSTER)}, size_px=60.0,
              jitter=_onto(CLUSTER)),
    ]
    dets, st = cap_stats(frames, GRID, cfg, SPLIT_OUTPUTS, names=["a", "b", "c"])
    refs = [reference(f, cfg, k) for f in frames]
    n_cand = [r[0] for r in refs]
    assert n_cand[0] == 150 and n_cand[1] == 5 and n_cand[2] == 40
    assert [d.candidates for d in dets] == n_cand
    assert [d.cap_dropped for d in dets] == [max(0, n - k) for n in n_cand]
    assert st.frames == 3 and st.frames_bound == 2 and st.bound_frames == ["a", "c"]
    assert st.candidates_dropped == (150 - k) + (40 - k)
    assert st.most_candidates == 150
    assert st.detections == sum(len(r[2]) for r in refs) == sum(len(d) for d in dets)
    assert st.detections_uncapped == sum(len(r[1]) for r in refs)
    assert st.detections_lost == sum(len(r[1]) - len(r[2]) for r in refs) > 0
    # frame 0 changes (130 separate boxes lost); frame 2: hard NMS gives the same output
    # (every dropped box overlaps the kept top), weighted NMS moves the merged box
    changed_c = not (len(refs[2][1]) == len(refs[2][2])
                     and np.array_equal(refs[2][1].boxes, refs[2][2].boxes))
    assert changed_c == (kind == "weighted")
    assert st.frames_changed == 1 + changed_c
    assert (st.detections_moved > 0) == (kind == "weighted")
    text = st.sentence()
    assert f"bound on 2/3 frame(s), {st.candidates_dropped} candidate(s) dropped" in text
    assert f"{st.detections} detections instead of {st.detections_uncapped}" in text


def test_no_cap_never_binds_and_says_so():
    f = frame({a: 4.0 for a in range(0, 896, 3)})  # 299 candidates
    dets, st = cap_stats([f], GRID, DecodeConfig(max_candidates=0), SPLIT_OUTPUTS)
    assert dets[0].candidates == 299 and dets[0].cap_dropped == 0 and not st.bound
    assert "no candidate cap" in st.sentence()
    assert not CapStats(128).bound and "never bound" in CapStats(128).sentence()


# ---------------------------------------------------------------------------------------------
# the verdict engine: cap and threshold alerts
# ---------------------------------------------------------------------------------------------
def _faces(extra: int, extra_logit: float = 1.8, jitter=None):
    """Two confident faces (logit 4: score 0.982) plus ``extra`` separate boxes at
    ``extra_logit`` (1.8: score 0.858, over 0.8 but under 0.8 + the 0.1 margin)."""
    on = {100: 4.0, 600: 4.0}
    on.update({200 + 3 * i: extra_logit for i in range(extra)})
    return frame(on, jitter=jitter)


def _compare(ref, test, cfg):
    return compare_runtime(RuntimeResult("int8_tflite", "TFLite int8", "int8", "tflite"), ref,
                           SPLIT_OUTPUTS, test, SPLIT_OUTPUTS, GRID, cfg, INT8_DEFAULT)


def test_extras_at_the_deployed_threshold_are_an_alert_not_hidden_by_the_margin():
    """The st-app case: fp32 finds 2, int8 14 at 0.8; the margin (0.9) passes it, the alert
    says so in the summary line and the record; at the rule's limit (max(2, 10%)) no alert."""
    cfg = DecodeConfig(score_thresh=0.8, max_candidates=0)
    rng = np.random.default_rng(0)
    jit = rng.uniform(-0.05, 0.05, (896, 2)).astype(f32)  # int8-like noise on the offsets
    ref = [_faces(0)]
    res = _compare(ref, [_faces(12, jitter=jit)], cfg)
    assert res.status == "ok" and not res.failures  # the margin's rule passes it
    assert res.match.ref == 2 and res.match.test == 14 and res.match.extra == 12
    a = res.at_threshold
    assert a["alert"] and a["extra"] == 12 and a["missing"] == 0 and a["limit"] == 2
    assert len(res.alerts) == 1 and res.alerts[0] in res.warnings
    assert "at the deployed threshold 0.80 it finds 14 detection(s) where the reference finds 2" \
        in res.alerts[0] and ">= 0.90" in res.alerts[0]
    line = res.summary()
    assert line.startswith("ok, WARNING:") and "14 detections vs 2 (12 extra, 0 missing)" in line
    rec = res.record()
    assert rec["alerts"] == res.alerts and rec["detections"]["at_threshold"]["extra"] == 12
    from blazeear_edge.export.records import figure

    assert figure(rec).startswith("ok, WARNING:") and "14 vs 2 detections" in figure(rec)
    # the limit itself: 2 extra for 2 reference detections is max(2, 0.2) = 2, not more
    edge = _compare(ref, [_faces(2)], cfg)
    assert edge.match.extra == 2 and not edge.alerts and edge.summary().startswith("ok:")
    assert _compare(ref, [_faces(3)], cfg).alerts  # one more is
    # missing ones count the same way: the reference has 14, the runtime 2
    miss = _compare([_faces(12)], [_faces(0)], cfg)
    assert miss.match.missing == 12 and miss.at_threshold["limit"] == pytest.approx(2.0)
    assert miss.alerts and "12 missing" in miss.alerts[0]


def test_compare_runtime_reports_a_cap_that_changes_the_output():
    cfg = DecodeConfig(score_thresh=0.8, max_candidates=5, nms="hard")
    ref = [_faces(0), _faces(12)]
    res = _compare(ref, ref, cfg)
    c = res.cap
    assert c["frames"] == 2 and c["frames_bound"] == 1 and c["candidates_dropped"] == 14 - 5
    assert c["detections_uncapped"] == 2 + 14 and c["detections"] == 2 + 5
    assert c["frames_changed"] == 1 and c["detections_lost"] == 9
    assert len(res.alerts) == 1 and "changed the output on 1 frame(s)" in res.alerts[0]
    assert "candidate cap K=5 changed 1 frame(s)" in res.summary()
    assert res.record()["candidate_cap"]["frames_changed"] == 1
    # no cap: no figures, no alert
    free = _compare(ref, ref, DecodeConfig(score_thresh=0.8, max_candidates=0, nms="hard"))
    assert free.cap == {} and free.alerts == []


def test_parity_cap_check_wording():
    from blazeear_edge.parity import check_candidate_cap

    cfg = DecodeConfig(score_thresh=0.8, max_candidates=5, nms="hard")
    ref = [_faces(0), _faces(12)]
    res = _compare(ref, ref, cfg)
    chk = check_candidate_cap(cfg, [res])
    assert chk.status == "WARNING" and not chk.failures
    assert "bound on 1/2 frame(s), 9 candidate(s) dropped, output changed on 1" in chk.detail
    ok = _compare(ref, ref, DecodeConfig(score_thresh=0.8, max_candidates=100, nms="hard"))
    chk = check_candidate_cap(cfg, [ok])
    assert chk.status == "passed" and "never bound" in chk.detail
    assert check_candidate_cap(DecodeConfig(max_candidates=0), [ok]).status == "passed"


# ---------------------------------------------------------------------------------------------
# detect: the full decode by default; a cap says when it bound
# ---------------------------------------------------------------------------------------------
def test_detect_default_is_the_full_decode_and_a_cap_is_reported(run_cli, astronaut_png):
    from blazeear_edge.detect import Detector
    from blazeear_edge.preprocess import load_image, preprocess

    thresh, k = 0.0, 4  # every anchor is a candidate: more than the board's default cap
    det = Detector("mediapipe")
    x, _ = preprocess(load_image(astronaut_png), "NCHW")
    raw = dict(zip([s.name for s in SPLIT_OUTPUTS], det.raw_outputs(x)))
    cfg = DecodeConfig(score_thresh=thresh, nms="hard", max_candidates=k)
    regs, logits = join_outputs(raw)
    s = sigmoid_scores(logits)
    keep = s >= f32(thresh)
    b, kp = decode_boxes(regs[keep], det.anchors.table[keep])
    ok = (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
    n = int(ok.sum())
    full = nms(b[ok], kp[ok], s[keep][ok], 0.3, "hard")
    capped = nms(b[ok], kp[ok], s[keep][ok], 0.3, "hard", max_candidates=k)
    assert n > k and len(full) > len(capped)  # the case is one where the cap changes things
    # ... and where the board's default cap would (the host's default before issue 21)
    assert n > DEFAULT_MAX_CANDIDATES and len(full) > len(
        nms(b[ok], kp[ok], s[keep][ok], 0.3, "hard", max_candidates=DEFAULT_MAX_CANDIDATES))

    def run(*extra):
        r = run_cli("detect", str(astronaut_png), "--json", "--nms", "hard", "--score-thresh",
                    str(thresh), *extra)
        assert r.code == 0, r.err
        return json.loads(r.out)[0], r.err

    default, err = run()
    assert len(default["detections"]) == len(full) and "candidate_cap" not in default
    assert "candidate cap" not in err
    out, err = run("--max-candidates", str(k))
    assert len(out["detections"]) == len(capped)
    assert out["candidate_cap"] == {"max_candidates": k, "candidates": n, "dropped": n - k,
                                    "bound": True, "detections_uncapped": len(full),
                                    "detections_lost": len(full) - len(capped),
                                    "detections_moved": 0}
    assert (f"warning: candidate cap K={k} bound on 1/1 frame(s), {n - k} candidate(s) dropped"
            in err)
    # text output: the image line and the closing line say it
    r = run_cli("detect", str(astronaut_png), "--nms", "hard", "--score-thresh", str(thresh),
                "--max-candidates", str(k))
    assert r.code == 0 and f"candidate cap {k} bound: {n - k} of {n} candidates dropped" in r.out
    assert f"{len(capped)} detections instead of {len(full)} without the cap" in r.out
    # a cap that does not bind says so too (the default threshold: a handful of candidates)
    r = run_cli("detect", str(astronaut_png), "--max-candidates", "128")
    assert r.code == 0 and "candidate cap K=128 never bound on 1 frame(s)" in r.out


# ---------------------------------------------------------------------------------------------
# parity on a real export whose manifest's cap binds
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_parity_reports_the_frames_the_board_cap_changes(default_export, tmp_path):
    """A copy of the default export whose decode keeps 1 candidate: parity's cap check names
    the frames and counts, per runtime, equal to the uncapped vs capped decode of the same
    outputs computed here (the step-by-step reference)."""
    from blazeear_edge.manifest import load_manifest
    from blazeear_edge.parity import CAP_CHECK, load_parity_images, run_parity
    from blazeear_edge.runtimes import export_runtimes

    dst = tmp_path / "export"
    shutil.copytree(default_export, dst, ignore=shutil.ignore_patterns("calib.npz"))
    p = dst / "manifest.json"
    m = json.loads(p.read_text())
    m["decode"]["max_candidates"] = 1
    p.write_text(json.dumps(m))
    rep = run_parity(dst, count=6, c_check=False, runtimes=["int8_tflite"])
    chk = next(c for c in rep.checks if c.name == CAP_CHECK)
    man = load_manifest(dst)
    cfg = man.decode_config()
    imgs, _ = load_parity_images(None, 6)
    rts, _ = export_runtimes(man, ["pytorch", "int8_tflite"])
    for rt in rts:
        want_bound = want_changed = want_dropped = 0
        for r in rt.run(imgs):
            regs, logits = join_outputs(r, rt.specs)
            s = sigmoid_scores(logits)
            keep = s >= f32(cfg.score_thresh)
            b, kp = decode_boxes(regs[keep], man.anchors()[keep])
            ok = (b[:, 2] >= b[:, 0]) & (b[:, 3] >= b[:, 1])
            n = int(ok.sum())
            if n > 1:
                want_bound += 1
                want_dropped += n - 1
                full = nms(b[ok], kp[ok], s[keep][ok], cfg.iou_thresh, cfg.nms)
                one = nms(b[ok], kp[ok], s[keep][ok], cfg.iou_thresh, cfg.nms,
                          max_candidates=1)
                want_changed += not (len(full) == len(one) and np.allclose(full.boxes,
                                                                           one.boxes))
        c = chk.data[rt.key]
        assert (c["frames_bound"], c["candidates_dropped"]) == (want_bound, want_dropped)
        assert c["frames_changed"] == want_changed
    assert want_bound > 0  # a real face has several candidates
    text = rep.format_text()
    assert CAP_CHECK in text
    if chk.data["int8_tflite"]["frames_changed"]:
        assert chk.status == "WARNING" and "WARNING:" in text and rep.alerts


# ---------------------------------------------------------------------------------------------
# which part of the domain a verification covered
# ---------------------------------------------------------------------------------------------
def test_domain_coverage_per_head_by_construction():
    from blazeear_edge.coverage import coverage_sentence, domain_coverage

    cfg = DecodeConfig(score_thresh=0.5)
    small = frame({100: 4.0}, size_px=8.0)  # a 16x16-head anchor, 8 px wide: 1/16 of the frame
    both = frame({100: 4.0, 700: 4.0}, size_px=8.0)
    regs = both["regressors_8x8"]
    regs[0, 700 - 512, 2:4] = 64.0  # the 8x8-head box is 64 px wide: half the frame
    empty = frame({})
    cov = domain_coverage([small, both, empty], SPLIT_OUTPUTS, GRID, cfg)
    assert cov["images"] == 3 and cov["detections"] == 3 and cov["images_with_detections"] == 2
    assert cov["box_width_of_frame"] == {"min": 0.062, "median": 0.062, "max": 0.5}
    h16, h8 = cov["heads"]["16x16"], cov["heads"]["8x8"]
    assert (h16["detections"], h16["images"], h16["anchors"]) == (2, 2, [0, 512])
    assert h16["box_width_of_frame"]["max"] == 0.062
    assert (h8["detections"], h8["images"]) == (1, 1) and h8["box_width_of_frame"]["min"] == 0.5
    text = coverage_sentence(cov)
    assert "3 face(s) on 2/3 image(s)" in text and "0.06-0.50" in text
    assert text.endswith("8x8 head alone: 1 on 1 image(s), width 0.50")
    none = domain_coverage([empty], SPLIT_OUTPUTS, GRID, cfg)
    assert none["detections"] == 0 and "16x16 head alone: 0 on 0 image(s)" in \
        coverage_sentence(none)


def test_export_records_and_prints_its_coverage(fp32_export):
    """The manifest's coverage counts the same reference detections as the export's own
    verification record (the compare engine's count, decoded separately)."""
    from blazeear_edge.manifest import load_manifest

    v = load_manifest(fp32_export).verification
    cov = v["coverage"]
    assert cov["images"] == v["images"]
    assert cov["detections"] == v["fp32_onnx"]["detections"]["ref"] > 0
    assert set(cov["heads"]) == {"16x16", "8x8"}
    assert sum(h["detections"] for h in cov["heads"].values()) >= 1


def test_bench_shows_the_verification_alerts(fp32_export, tmp_path):
    """An artifact whose verification record carries an alert (a large change at the deployed
    threshold, a binding cap) gets WARNING in its parity cell and a line under the table."""
    from blazeear_edge.bench import run_bench

    dst = tmp_path / "export"
    shutil.copytree(fp32_export, dst)
    p = dst / "manifest.json"
    m = json.loads(p.read_text())
    alert = ("ONNX fp32 (fp32_onnx): at the deployed threshold 0.80 it finds 14 detection(s) "
             "where the reference finds 2")
    m["artifacts"]["fp32_onnx"]["verification"]["alerts"] = [alert]
    m["artifacts"]["fp32_onnx"]["verification"]["candidate_cap"] = {
        "max_candidates": 128, "frames_bound": 3, "frames_changed": 1}
    p.write_text(json.dumps(m))
    res = run_bench(dst, runs=1, progress=False)
    row = next(r for r in res.rows if r.artifact == "fp32_onnx")
    assert row.det_alerts == alert
    assert (row.cap_frames_bound, row.cap_frames_changed) == (3, 1)
    md = res.markdown()
    assert f"- WARNING ({row.label}, export verification): {alert}" in md
    assert "WARNING |" in md.split(row.label, 1)[1].splitlines()[0]
    clean = run_bench(fp32_export, runs=1, progress=False)
    assert "WARNING" not in clean.markdown()


def test_harness_cap_summary_counts_real_frames_only():
    """The harness says when the model's cap bound on the image vectors; hand-built vectors
    (which test the cap on purpose) are left out."""
    from types import SimpleNamespace

    from blazeear_edge.harness import Vector, cap_summary
    from blazeear_edge.postprocess import decode_outputs

    cfg = DecodeConfig(score_thresh=0.5, nms="hard", max_candidates=5)
    model = SimpleNamespace(config=cfg, anchors=GRID, specs=SPLIT_OUTPUTS)
    outs = [_faces(12), _faces(0), _faces(12)]
    vecs = [Vector(f"v{i}", [o[s.name] for s in SPLIT_OUTPUTS],
                   decode_outputs(o, GRID, cfg, SPLIT_OUTPUTS),
                   source="hand-built" if i == 2 else "int8_tflite")
            for i, o in enumerate(outs)]
    st = cap_summary(model, vecs)
    assert (st.frames, st.frames_bound, st.candidates_dropped) == (2, 1, 14 - 5)
    assert (st.detections, st.detections_uncapped, st.detections_lost) == (5 + 2, 14 + 2, 9)
    assert st.bound_frames == ["v0"]
    assert cap_summary(SimpleNamespace(config=DecodeConfig(max_candidates=0), anchors=GRID,
                                       specs=SPLIT_OUTPUTS), vecs) is None
