"""``lint`` against real STM32N6 compiles, both corpora: predicted vs ST's epochs, the verdict,
weights and RAM.

``python benchmarks/lint_vs_st.py [--markdown]``

* ``../shared/data/st-n6-compiles``: ST's own application builds (7 model files). Each is linted
  with the options of its compile: its ``stedgeai`` line and Neural-ART profile from
  ``truth.json`` (hw = EC blobs without trailing empty ones).
* ``../shared/data/third-party-n6``: models users compiled themselves (4 model files), linted
  as a new user would: ``lint MODEL --stedgeai "<stedgeai_command>" --st-version X.Y`` with the
  repository's published command (when there is none, the compiler options of the generated C)
  and the ST release of the C header.

Each row: ST's epochs (hw + hybrid + sw, read from the generated C), lint's estimate and its
range, the difference per kind, lint's verdict (``ok`` = no error, i.e. exit status 0) against
"ST compiled it" (every model here compiled), and unknown-op warnings. Both corpora are skipped
when absent. ``tests/test_lint_st_compiles.py`` and ``tests/test_lint_third_party.py`` assert
the same comparisons.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blazeear_edge.lint import lint_model, parse_stedgeai_command  # noqa: E402
from blazeear_edge.lint.options import parse_version  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
ST_COMPILES = SHARED / "st-n6-compiles"
THIRD_PARTY = SHARED / "third-party-n6"
KINDS = ("hw", "hybrid", "sw")


def fmt(e: dict) -> str:
    return "+".join(str(e[k]) for k in KINDS)


def st_options(entry: dict):
    """(StedgeaiOptions, the options as shown) of a truth.json entry of either corpus."""
    v = parse_version(entry["st_version"])
    version = f"{v[0]}.{v[1]}" if v else None
    if "options" in entry:  # ST's own builds: the stedgeai line and the Neural-ART profile
        o = entry["options"]
        return (parse_stedgeai_command(o["command"], o["neural_art_profile"],
                                       source="truth.json", version=version),
                o["command"].replace("stedgeai generate ", ""))
    cmd = entry.get("stedgeai_command") or ""
    if not cmd.startswith("stedgeai"):
        cmd = ""
    return (parse_stedgeai_command(cmd, entry.get("compiler_options"), source="truth.json",
                                   version=version),
            cmd.replace("stedgeai generate ", "") or "(not published; profile from the C)")


def st_epochs(entry: dict) -> dict:
    e = {k: entry["epochs"][k] for k in KINDS}
    if entry.get("ec_mode"):
        e["hw"] -= entry.get("empty_ec_blobs") or 0
    return e


def rows():
    """One dict per model of both corpora (skipping a corpus that is absent)."""
    out = []
    for corpus, folder in (("ST", ST_COMPILES), ("third-party", THIRD_PARTY)):
        truth = folder / "truth.json"
        if not truth.is_file():
            print(f"{corpus} corpus not found at {truth}", file=sys.stderr)
            continue
        for t in json.loads(truth.read_text()):
            opts, shown = st_options(t)
            times = []
            for _ in range(3):  # median of 3 (the first call also imports the readers)
                t0 = time.perf_counter()
                rep = lint_model(folder / t["file"], options=opts)
                times.append(time.perf_counter() - t0)
            dt = sorted(times)[1]
            m = rep.mapping
            out.append({
                "corpus": corpus, "name": t["name"], "version": opts.version,
                "options": shown, "ec": t.get("ec_mode", True), "st": st_epochs(t),
                "lint": dict(m.epochs), "range": {k: list(v) for k, v in m.epochs_range.items()},
                "exact": m.exact, "errors": rep.summary["errors"],
                "error_rules": sorted({f.rule for f in rep.findings if f.severity == "error"}),
                "unknown_ops": sum(f.rule == "unknown-op" for f in rep.findings),
                "weights": rep.weights_bytes / t["weights_bytes"], "seconds": dt})
    return out


def main(argv=None) -> int:
    rs = rows()
    print("| corpus | model | ST | stedgeai options | ST hw+hyb+sw | lint hw+hyb+sw | "
          "diff (hw/hyb/sw) | lint range | lint verdict (ST compiled it) | unknown ops | "
          "weights lint/ST |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rs:
        diff = "/".join(f"{r['lint'][k] - r['st'][k]:+d}" for k in KINDS)
        rng = "exact" if r["exact"] else ", ".join(
            f"{k} {lo}..{hi}" for k, (lo, hi) in r["range"].items() if lo != hi)
        verdict = "ok (match)" if not r["errors"] else f"FAIL {','.join(r['error_rules'])} " \
                                                        "(mismatch)"
        print(f"| {r['corpus']} | {r['name']}{'' if r['ec'] else ' (no EC)'} | {r['version']} "
              f"| `{r['options']}` | {fmt(r['st'])} | {fmt(r['lint'])} | {diff} | {rng} "
              f"| {verdict} | {r['unknown_ops']} | {r['weights']:.3f} |")
    exact = sum(r["lint"] == r["st"] for r in rs)
    ok = sum(not r["errors"] for r in rs)
    print(f"\n{len(rs)} models: verdict matches ST on {ok}; exact by kind on {exact}; "
          f"total within 2 on {sum(abs(sum(r['lint'].values()) - sum(r['st'].values())) <= 2 for r in rs)}; "
          f"slowest lint (median of 3) {max((r['seconds'] for r in rs), default=0):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
