"""Mutation check: put small, realistic bugs into a scratch copy of the repository, one at a
time, run the tests that should catch each, and report which were caught and which survived.

A check (a comparison, a tolerance, a tie rule) is only as good as a test that fails when it
is wrong; this script keeps that provable as the code changes (issue 10: "the checkers must be
shown to fail").

    python scripts/mutation_check.py              # every mutant
    python scripts/mutation_check.py --only decode  # mutants whose name contains "decode"
    python scripts/mutation_check.py --list       # names, files and tests, no run

Each entry of ``MUTANTS`` is ``Mutant(name, file, old, new, tests)``: in ``file`` (relative to
the repository root) the text ``old``, which must occur exactly once, is replaced by ``new``;
``tests`` are pytest node ids (or files) run against the mutated copy. Add entries at the end of
the list; keep ``old`` long enough to be unique and short enough to survive reformatting (the
script stops with an error naming the entry when ``old`` is not found exactly once).

Outcomes: ``caught`` (the tests fail), ``SURVIVED`` (they pass), ``error`` (pytest could not
run them: collection error, nothing selected). Before the mutants, each distinct test selection
is run once on the unmutated copy (``--no-baseline`` skips it); a selection that fails there
makes its mutants ``invalid``. The copy lives in a temporary folder beside a symlink to the
shared data folder (``../shared`` of the repository), so the tests find the same data; the
repository itself is never modified. Exit status 0 when every mutant is caught, 1 otherwise,
2 on a bad entry.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    old: str
    new: str
    tests: tuple


PP = "blazeear_edge/postprocess.py"
C = "firmware_harness/blazeear_pp.c"
CMP = "blazeear_edge/harness/compare.py"
CAP_TESTS = "tests/test_decode_cap.py"
C_TESTS = ("tests/test_harness.py::test_host_identical_to_numpy",)

MUTANTS = [
    # --- NumPy decode (the path decode() / decode_outputs() take) ---------------------------
    Mutant("decode: score >= -> > (logit bound)", PP,
           "cand = (logits >= bound).nonzero()", "cand = (logits > bound).nonzero()",
           (f"{CAP_TESTS}::test_logit_exactly_at_the_bound_is_kept_by_decode",)),
    Mutant("decode: IoU > -> >= (all-pairs NMS test)", PP,
           "out=union) > _const32(iou_thresh)", "out=union) >= _const32(iou_thresh)",
           (f"{CAP_TESTS}::test_iou_exactly_at_the_threshold_is_not_suppressed_by_decode",)),
    Mutant("decode: IoU > -> >= (single candidate)", PP,
           "if weighted and _iou_self(c[0]) > _F(iou_thresh):",
           "if weighted and _iou_self(c[0]) >= _F(iou_thresh):",
           (f"{CAP_TESTS}::test_iou_at_the_threshold_with_a_single_candidate",)),
    Mutant("decode: cap ties by descending anchor", PP,
           "order = sorted(range(n), key=sl.__getitem__, reverse=True)",
           "order = sorted(range(n), key=lambda i: (sl[i], i), reverse=True)",
           (f"{CAP_TESTS}::test_cap_keeps_the_top_k_with_ties_by_anchor_index",)),
    Mutant("decode: cap not applied at n == K + 1", PP,
           "    if 0 < k < n:  # the cap", "    if 0 < k < n - 1:  # the cap",
           (f"{CAP_TESTS}::test_cap_keeps_the_top_k_with_ties_by_anchor_index",)),
    # --- C post-processing ------------------------------------------------------------------
    Mutant("C: weighted NMS IoU > -> >=", C,
           "if (blazeear_pp_iou(tb, pp->cand_coords[j]) > thr) {",
           "if (blazeear_pp_iou(tb, pp->cand_coords[j]) >= thr) {", C_TESTS),
    Mutant("C: hard NMS IoU > -> >=", C,
           "if (!(blazeear_pp_iou(tb, pp->cand_coords[j]) > thr))",
           "if (!(blazeear_pp_iou(tb, pp->cand_coords[j]) >= thr))", C_TESTS),
    Mutant("C: score >= -> > (after the int8 pre-filter)", C,
           "if (!(s >= thr))\n                continue;\n            pp->pass_score",
           "if (!(s > thr))\n                continue;\n            pp->pass_score", C_TESTS),
    Mutant("C: cap takes K + 1", C,
           "if (cap > 0 && n == cap) {", "if (cap > 0 && n > cap) {", C_TESTS),
    Mutant("C: ties by descending anchor", C,
           "return pp->pass_anchor[i] < pp->pass_anchor[j];",
           "return pp->pass_anchor[i] > pp->pass_anchor[j];", C_TESTS),
    Mutant("C: score table off by one level", C,
           "pp->score_lut[i][k] = score_of(t, cfg, qlo + k);",
           "pp->score_lut[i][k] = score_of(t, cfg, qlo + k + (k < 255));", C_TESTS),
    # --- the harness comparator ("bit-exact") -------------------------------------------------
    Mutant("harness compare: bit-exact -> allclose", CMP,
           "return a.shape == b.shape and bool((a.view(np.uint32) == b.view(np.uint32)).all())",
           "return a.shape == b.shape and bool(np.allclose(a, b))",
           (f"{CAP_TESTS}::test_comparator_sees_one_ulp_and_the_sign_of_zero",)),
    Mutant("harness compare: box tolerance 1e-5 -> 1e-1", CMP,
           "BOX_TOL = 1e-5", "BOX_TOL = 1e-1",
           (f"{CAP_TESTS}::test_comparator_tolerance_is_one_in_a_hundred_thousand",)),
    # --- the compare engine and its users (export verification, parity) ---------------------
    Mutant("parity: fp32 judged with the int8 tolerances", "blazeear_edge/parity.py",
           "tol.for_precision(rt.precision), dets[ref_rt.key], d)",
           "tol.int8, dets[ref_rt.key], d)",
           ("tests/test_compare.py::test_parity_fails_a_slightly_perturbed_fp32_artifact",)),
    Mutant("compare: keypoint limit never checked", "blazeear_edge/compare.py",
           "if m.max_keypoint_err_px > tol.max_keypoint_err_px:", "if False:",
           ("tests/test_compare.py::test_judge_checks_keypoint_and_score_limits",)),
    Mutant("compare: score-delta limit never checked", "blazeear_edge/compare.py",
           "if m.max_score_delta > tol.max_score_delta:", "if False:",
           ("tests/test_compare.py::test_judge_checks_keypoint_and_score_limits",)),
    Mutant("compare: fp32 scaled error never checked", "blazeear_edge/compare.py",
           "if res.scaled_err is not None and not res.scaled_err <= tol.max_scaled_err:",
           "if False:",
           ("tests/test_compare.py::test_small_noise_passes_int8_but_fails_fp32",)),
    Mutant("compare: extra detections never counted", "blazeear_edge/compare.py",
           "if rate(c[\"extra\"]) > tol.max_extra_rate:", "if False:",
           ("tests/test_compare.py::test_judge_missing_and_extra_rates",)),
    Mutant("parity: ONNX output quantisation not checked against the manifest",
           "blazeear_edge/parity.py",
           "if name in quant and _quant_differs(o.quantization, *quant[name]):", "if False:",
           ("tests/test_compare.py::test_parity_checks_onnx_output_quantization_against_manifest",)),
    Mutant("export: fp32 ONNX verified against itself", "blazeear_edge/export/__init__.py",
           "compare_runtime(res, plan.ref_outputs, plan.specs, raw, specs,",
           "compare_runtime(res, raw, specs, raw, specs,",
           ("tests/test_compare.py::test_export_fails_when_the_onnx_differs_from_pytorch",
            "tests/test_compare.py::test_export_records_the_onnx_error_measured_independently")),
    Mutant("manifest: a field of the wrong type accepted", "blazeear_edge/manifest.py",
           "        if not ok:\n            self._bad(", "        if False:\n            self._bad(",
           ("tests/test_compare.py::test_manifest_field_of_wrong_type_is_a_one_line_error",)),
    # --- cloud ---------------------------------------------------------------------------------
    Mutant("cloud: Token.expired() always false", "blazeear_edge/cloud/auth.py",
           "return (time.time() if now is None else now) >= self.expires_at - margin",
           "return False", ("tests/test_cloud.py",)),
    Mutant("cloud: POSTs retried after a 5xx", "blazeear_edge/cloud/http.py",
           'RETRY_METHODS = frozenset({"GET", "HEAD"})',
           'RETRY_METHODS = frozenset({"GET", "HEAD", "POST"})', ("tests/test_cloud.py",)),
    # --- lint ----------------------------------------------------------------------------------
    Mutant("lint: MatMul of two activations on the NPU", "blazeear_edge/lint/placement.py",
           "        return \"sw\", (\"sw\",), \"software-op\", \"software-op\", None\n"
           "    if k in (\"ReduceMean\", \"ReduceMax\"):",
           "        return \"hw\", (\"hw\",), \"\", \"hw\", None\n"
           "    if k in (\"ReduceMean\", \"ReduceMax\"):",
           ("tests/test_lint_placement.py::test_matmul_gemm_placement",)),
    # --- int8 fine-tuning simulation (quantize/qat.py) ----------------------------------------
    Mutant("qat: block output (Add + ReLU) not rounded", "blazeear_edge/quantize/qat.py",
           'names += [f"{n}.convs.0", f"{n}.convs.1", n]',
           'names += [f"{n}.convs.0", f"{n}.convs.1"]',
           ("tests/test_qat.py::test_simulation_rounds_where_and_as_onnxruntime_does",)),
    Mutant("qat: zero point off by the sign of lo", "blazeear_edge/quantize/qat.py",
           "zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))",
           "zp = int(np.clip(np.round(-128 + lo / scale), -128, 127))",
           ("tests/test_qat.py::test_simulation_rounds_where_and_as_onnxruntime_does",)),
    Mutant("qat: weights left off the grid at the end", "blazeear_edge/quantize/qat.py",
           "conv.weight.copy_(torch.from_numpy(from_grid(*to_grid(w))))",
           "conv.weight.copy_(torch.from_numpy(w))",
           ("tests/test_qat.py::test_finetune_keeps_the_grid_and_lowers_the_simulated_loss",)),
    # --- lint footprint: ST's flash image (lint/footprint.py) ---------------------------------
    Mutant("lint: 2.x TFLite depthwise kernels not inflated", "blazeear_edge/lint/footprint.py",
           'ST_IMAGE_RULES = {(2, "tflite"): 8, (2, "onnx"): 4}',
           'ST_IMAGE_RULES = {(2, "tflite"): 1, (2, "onnx"): 4}',
           ("tests/test_lint_st_compiles.py",)),
    Mutant("lint: per-channel tables only above 1024 channels", "blazeear_edge/lint/footprint.py",
           "ST_CHANNEL_TABLE_MAX_PLAIN = 512", "ST_CHANNEL_TABLE_MAX_PLAIN = 1024",
           ("tests/test_lint_st_compiles.py", "tests/test_lint.py")),
    # --- per-tensor quantisation report (quantize/__init__.py) --------------------------------
    Mutant("quant report: own rounding compared before the Relu",
           "blazeear_edge/quantize/__init__.py",
           "        if name in clamps:\n", "        if False:\n",
           ("tests/test_quant_report.py",)),
    # stop 19: --score-range must reach the int8 ONNX, not only the TFLite
    Mutant("int8 ONNX keeps +-logit_saturation whatever --score-range says",
           "blazeear_edge/export/__init__.py",
           "    score_range = cfg.int8_score_range()\n    scores =",
           "    score_range = (-cfg.logit_saturation, cfg.logit_saturation)\n    scores =",
           ("tests/test_export.py::test_score_range_sets_both_int8_files",)),
    # stop 19: the default export fine-tunes after AdaRound
    Mutant("the default export does not fine-tune",
           "blazeear_edge/export/config.py",
           "            self.qat_steps = (QAT_DEFAULT if",
           "            self.qat_steps = (0 if",
           ("tests/test_export.py::test_default_config_fine_tunes_after_adaround",)),
]


def check_entries(mutants) -> list[str]:
    """Problems with the entries (``old`` not found exactly once, old == new, no tests)."""
    bad = []
    for m in mutants:
        path = ROOT / m.file
        if not path.is_file():
            bad.append(f"{m.name}: {m.file} not found")
            continue
        n = path.read_text().count(m.old)
        if n != 1:
            bad.append(f"{m.name}: the text to replace occurs {n} times in {m.file}")
        if m.old == m.new:
            bad.append(f"{m.name}: old and new are the same")
        if not m.tests:
            bad.append(f"{m.name}: no tests named")
    return bad


def scratch_copy(dest: Path) -> Path:
    """The repository (without .git, venvs and caches) at dest/repo, with dest/shared pointing
    at the real shared data folder when there is one."""
    repo = dest / "repo"
    shutil.copytree(ROOT, repo, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".pytest_cache", "*.egg-info", "build", "dist"))
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (dest / "shared").symlink_to(shared)
    return repo


def run_tests(repo: Path, tests, timeout: float) -> tuple[int, float, str]:
    env = dict(os.environ, PYTHONPATH=str(repo), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-rfE", "-p", "no:cacheprovider", *tests]
    t0 = time.monotonic()
    try:
        res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True,
                             timeout=timeout)
        code, out = res.returncode, res.stdout + res.stderr
    except subprocess.TimeoutExpired:
        code, out = -1, "timed out"
    return code, time.monotonic() - t0, out


def last_line(text: str) -> str:
    """The first FAILED / ERROR line of pytest's summary (what caught the mutant), else the
    last line."""
    lines = [x for x in text.strip().splitlines() if x.strip()]
    hit = next((x for x in lines if x.startswith(("FAILED ", "ERROR "))), None)
    return (hit or (lines[-1] if lines else ""))[:160]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, metavar="TEXT",
                    help="run the mutants whose name contains one of these")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip running each test selection on the unmutated copy first")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per pytest run")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    a = ap.parse_args(argv)

    mutants = [m for m in MUTANTS
               if a.only is None or any(t.lower() in m.name.lower() for t in a.only)]
    if a.list:
        for m in mutants:
            print(f"{m.name}\n    {m.file}: {m.old!r} -> {m.new!r}\n    tests: "
                  f"{' '.join(m.tests)}")
        return 0
    bad = check_entries(mutants)
    if bad:
        for b in bad:
            print(f"mutation_check: error: {b}", file=sys.stderr)
        return 2
    if not mutants:
        print("mutation_check: no mutant matches --only", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="blazeear-mutants-"))
    results = []
    try:
        repo = scratch_copy(tmp)
        broken = set()
        if not a.no_baseline:
            for tests in dict.fromkeys(m.tests for m in mutants):
                code, secs, out = run_tests(repo, tests, a.timeout)
                print(f"baseline {' '.join(tests)}: "
                      f"{'passes' if code == 0 else 'FAILS: ' + last_line(out)} ({secs:.0f} s)",
                      flush=True)
                if code != 0:
                    broken.add(tests)
        for m in mutants:
            if m.tests in broken:
                results.append((m, "invalid", 0.0, "the tests fail without the mutant"))
                print(f"{m.name}: invalid", flush=True)
                continue
            path = repo / m.file
            original = path.read_text()
            path.write_text(original.replace(m.old, m.new, 1))
            try:
                code, secs, out = run_tests(repo, m.tests, a.timeout)
            finally:
                path.write_text(original)
            outcome = {0: "SURVIVED", 1: "caught"}.get(code, "error")
            results.append((m, outcome, secs, last_line(out)))
            print(f"{m.name}: {outcome} ({secs:.0f} s)", flush=True)
    finally:
        if a.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    width = max(len(m.name) for m, *_ in results)
    print(f"\n{'mutant':{width}s}  outcome   seconds  pytest")
    for m, outcome, secs, line in results:
        print(f"{m.name:{width}s}  {outcome:8s}  {secs:7.0f}  {line}")
    caught = sum(o == "caught" for _, o, _, _ in results)
    print(f"\n{caught}/{len(results)} mutants caught")
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
