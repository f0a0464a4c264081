"""``lint`` against real ST Edge AI compiles for the STM32N6 (``../shared/data/st-n6-compiles``).

Each model file is linted with the options of its own compile (its ``stedgeai`` command line and
Neural-ART profile, from ``truth.json``) and compared with what ST's generated ``network.c``
shows: epochs by kind (EC blobs in EC builds, trailing empty 24-byte blobs left out), the flash
image of the weights and the RAM pools. The reference is ST's compiler output, read from ST's
repositories (``../shared/docs/st-n6-compiles.md``); the files' SHA-256 are checked first.
The tests skip, naming the path, when the folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import truth_corpus  # noqa: E402  (tests/ is on sys.path)

from blazeear_edge.lint import lint_model, parse_stedgeai_command
from blazeear_edge.lint.footprint import RAM_POOL_BAND, WEIGHTS_ST_BAND

ST_COMPILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "st-n6-compiles"
TRUTH = ST_COMPILES / "truth.json"
KINDS = ("hw", "hybrid", "sw")


def _entries() -> list:
    return truth_corpus.entries(TRUTH)


def _need(entry) -> Path:
    return truth_corpus.model_file(entry, ST_COMPILES, TRUTH, "ST compiles")


def st_epochs(entry) -> dict:
    """ST's epochs by kind, trailing empty EC blobs left out (they do no work)."""
    e = {k: entry["epochs"][k] for k in KINDS}
    if entry["ec_mode"]:
        e["hw"] -= entry.get("empty_ec_blobs") or 0
    return e


def lint_as_compiled(entry, path):
    o = entry["options"]
    opts = parse_stedgeai_command(o["command"], o["neural_art_profile"], source="truth.json",
                                  version=entry["st_version"])
    assert opts.epoch_controller == entry["ec_mode"]  # the parser reads the profile right
    return lint_model(path, options=opts)


@pytest.mark.parametrize("entry", _entries())
def test_epochs_match_st_compile(entry):
    path = _need(entry)
    rep = lint_as_compiled(entry, path)
    st, m = st_epochs(entry), rep.mapping
    for k in KINDS:  # ST's count always lies in the reported range
        lo, hi = m.epochs_range[k]
        assert lo <= st[k] <= hi, (k, m.epochs, m.epochs_range, st)
    if m.exact and entry["ec_mode"]:  # no uncertain rule fired: the estimate must be exact
        assert m.epochs == st, (m.epochs, st)


@pytest.mark.parametrize("entry", _entries())
def test_footprint_bands_hold(entry):
    path = _need(entry)
    rep = lint_as_compiled(entry, path)
    fp = rep.to_dict()["footprint"]
    lo, hi = fp["weights_st_image_band_bytes"]
    assert lo <= entry["weights_bytes"] <= hi, (rep.weights_bytes, entry["weights_bytes"])
    assert WEIGHTS_ST_BAND[0] * rep.weights_bytes <= entry["weights_bytes"]
    # with the compile's version, the estimate of the flash image itself is within 10% (issue 12)
    assert 0.9 <= rep.weights_bytes / entry["weights_bytes"] <= 1.1, (
        rep.weights_bytes, entry["weights_bytes"], entry["st_version"])
    rlo, rhi = fp["ram_pools_band_bytes"]
    assert rlo <= entry["activations_bytes"] <= rhi
    # the liveness peak is a lower bound up to ST's best observed packing
    assert rep.activations_peak_bytes * RAM_POOL_BAND[0] <= entry["activations_bytes"]


def test_score_on_the_shipped_compiles():
    """The closing figure: exact epochs by kind on at least 6 of the 7 (all EC builds, the
    channel-doubling pads of palm and face_landmarks included), the others in range, and the
    total within 2 on the non-EC build (yamnet: 36 scheduler epochs, 35 estimated)."""
    if not TRUTH.is_file():
        pytest.skip(f"ST compiles not found at {TRUTH}")
    exact, total_close = 0, 0
    entries = json.loads(TRUTH.read_text())
    for entry in entries:
        rep = lint_as_compiled(entry, _need(entry))
        st = st_epochs(entry)
        exact += rep.mapping.epochs == st
        total_close += abs(rep.mapping.total_epochs - sum(st.values())) <= 2
    assert exact >= 6 and len(entries) == 7
    assert total_close == len(entries)  # yamnet 38 vs 39, the others exact


def test_rewrites_seen_in_st_builds_are_named(request):
    """The hybrid operators ST's network.c shows come from the rules that describe them."""
    if not TRUTH.is_file():
        pytest.skip(f"ST compiles not found at {TRUTH}")
    by_name = {t["name"]: t for t in json.loads(TRUTH.read_text())}
    cases = {"st_yolo_x_nano_480": {"resize-nearest-x2": 2, "concat-float-output": 3,
                                    "output-dequantize": 3},
             "face_landmarks_v1_192": {"whole-input-conv": 1, "output-dequantize": 1},
             "yamnet_1024_64x96": {"head-transpose": 1, "input-quantize": 1}}
    for name, want in cases.items():
        entry = by_name[name]
        rep = lint_as_compiled(entry, _need(entry))
        rules = [p.rule for p in rep.mapping.ops]
        for rule, n in want.items():
            assert rules.count(rule) == n, (name, rule, rules.count(rule))
        assert not any(p.unit == "sw" and p.op in ("Neg", "NEG") for p in rep.mapping.ops)
