"""``lint`` on models users compiled themselves (``../shared/data/third-party-n6``).

Four models (two Ultralytics YOLOv8 TFLite exports, two MediaPipe landmark models), each
compiled for the STM32N6 by its owner with ST Edge AI and run on a board. ``truth.json`` holds
what ST's generated C shows: epochs by kind and the operator of every hybrid and software epoch.
Each model is linted the way a new user would: ``lint MODEL --stedgeai "<published command>"
--st-version X.Y`` (the compiler options of the C when no command is published). The
reference is ST's generated code; the files' SHA-256 are checked first. The tests skip, naming
the path, when the folder is absent.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
import truth_corpus  # noqa: E402  (tests/ is on sys.path)

from blazeear_edge.lint import lint_model, parse_stedgeai_command
from blazeear_edge.lint.options import parse_version

THIRD_PARTY = Path(__file__).resolve().parents[2] / "shared" / "data" / "third-party-n6"
TRUTH = THIRD_PARTY / "truth.json"
KINDS = ("hw", "hybrid", "sw")

#: placement rule -> the operator ST's generated C names for its non-hardware steps
ST_KIND = {"channel-pad": "Transpose", "channel-pad-doubling": "Transpose",
           "transpose": "Transpose", "head-transpose": "Transpose",
           "layout-transpose": "Transpose", "resize-nearest-x2": "DepthToSpace",
           "whole-input-conv": "SpaceToDepth", "slice-dma": "Slice",
           "concat-float-output": "Concat", "concat-unequal-channels": "Concat",
           "concat-rank3-rows": "Concat", "output-dequantize": "DequantizeLinear",
           "output-convert": "DequantizeLinear", "input-quantize": "QuantizeLinear"}


def _entries() -> list:
    return truth_corpus.entries(TRUTH)


def _need(entry) -> Path:
    return truth_corpus.model_file(entry, THIRD_PARTY, TRUTH, "third-party compiles")


def user_command(entry) -> tuple[str | None, str]:
    """(the published stedgeai line or None, "X.Y" of the ST release in the C header)."""
    cmd = entry["stedgeai_command"]
    v = parse_version(entry["st_version"])
    return (cmd if cmd.startswith("stedgeai") else None), f"{v[0]}.{v[1]}"


def lint_as_user(entry, path):
    cmd, version = user_command(entry)
    if cmd is None:  # not published: the Neural-ART options the generated C records
        opts = parse_stedgeai_command("", entry["compiler_options"], source="truth.json",
                                      version=version)
        return lint_model(path, options=opts)
    return lint_model(path, stedgeai_command=cmd, st_version=version)


def st_kinds(rep) -> tuple[Counter, Counter]:
    """Hybrid and software epochs of the estimate by the operator ST's C would name."""
    hyb, sw = Counter(), Counter()
    for p in rep.mapping.ops:
        for s in p.epochs:
            if s == "hw":
                continue
            kind = ST_KIND.get(p.rule) or ("DequantizeLinear" if p.kind == "Conversion"
                                           else p.kind)
            (hyb if s == "hybrid" else sw)[kind] += 1
    return hyb, sw


@pytest.mark.parametrize("entry", _entries())
def test_no_false_fail_and_epochs_within_tolerance(entry):
    """ST compiled every model: no error; sw +-1, hybrid +-2, total within max(2, 10%); no
    unknown operator."""
    path = _need(entry)
    rep = lint_as_user(entry, path)
    assert rep.summary["errors"] == 0 and rep.exit_code() == 0, \
        [f.rule for f in rep.findings if f.severity == "error"]
    assert not [f for f in rep.findings if f.rule == "unknown-op"]
    st, m = entry["epochs"], rep.mapping.epochs
    assert abs(m["sw"] - st["sw"]) <= 1, (m, st)
    assert abs(m["hybrid"] - st["hybrid"]) <= 2, (m, st)
    assert abs(sum(m.values()) - st["total"]) <= max(2, 0.1 * st["total"]), (m, st)
    for k in KINDS:  # ST's count lies in the reported range, or at most one blob outside
        lo, hi = rep.mapping.epochs_range[k]
        assert lo - (k == "hw") <= st[k] <= hi + (k == "hw"), (k, rep.mapping.epochs_range, st)


@pytest.mark.parametrize("entry", _entries())
def test_hybrid_and_software_operators_are_st_s(entry):
    """By operator, the hybrid and software epochs are the ones ST's generated C shows
    (YOLOv8: 2 DepthToSpace, 8 Concat, 4 Slice, 1 Transpose hybrid; Softmax in software)."""
    path = _need(entry)
    hyb, sw = st_kinds(lint_as_user(entry, path))
    assert dict(hyb) == entry["hybrid_ops"], (dict(hyb), entry["hybrid_ops"])
    assert dict(sw) == entry["sw_ops"], (dict(sw), entry["sw_ops"])


def test_score_on_the_third_party_compiles():
    """The closing figure: no FAIL on 4 of 4; exact by kind on the two YOLOv8 models'
    hybrid/sw and face_landmark_192 in full; every total within 1 of ST's."""
    if not TRUTH.is_file():
        pytest.skip(f"third-party compiles not found at {TRUTH}")
    by_name = {}
    for entry in json.loads(TRUTH.read_text()):
        by_name[entry["name"]] = (entry, lint_as_user(entry, _need(entry)))
    assert len(by_name) == 4
    assert all(rep.summary["errors"] == 0 for _, rep in by_name.values())
    e, rep = by_name["face_landmark_192"]
    assert rep.mapping.epochs == {k: e["epochs"][k] for k in KINDS}
    for name in ("yolov8_face_320", "yolov8n_pothole_480"):
        e, rep = by_name[name]
        assert (rep.mapping.epochs["hybrid"], rep.mapping.epochs["sw"]) == \
            (e["epochs"]["hybrid"], e["epochs"]["sw"])
    for e, rep in by_name.values():
        assert abs(rep.mapping.total_epochs - e["epochs"]["total"]) <= 1, e["name"]


def test_cli_as_a_new_user(run_cli):
    """``lint MODEL --stedgeai "<published command>" --st-version X.Y`` exits 0 on the YOLOv8
    face model and names the mode it counted; lint stays well under a few seconds."""
    if not TRUTH.is_file():
        pytest.skip(f"third-party compiles not found at {TRUTH}")
    entry = {t["name"]: t for t in json.loads(TRUTH.read_text())}["yolov8_face_320"]
    path = _need(entry)
    cmd, version = user_command(entry)
    t0 = time.perf_counter()
    r = run_cli("lint", path, "--stedgeai", cmd, "--st-version", version)
    assert r.code == 0, r.out + r.err
    assert time.perf_counter() - t0 < 10  # generous: the 2-core CI; benchmarks time it
    assert "0 error(s)" in r.out and "output int8" in r.out and "ST Edge AI 2.2" in r.out
    assert "hybrid" in r.out and "STRIDED_SLICE" in r.out
