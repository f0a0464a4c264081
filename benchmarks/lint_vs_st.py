"""``lint`` against ST's real STM32N6 compiles: predicted vs ST's epochs, weights and RAM.

``python benchmarks/lint_vs_st.py``

Each model in ``../shared/data/st-n6-compiles`` (skipped when absent) is linted with the options of
its own compile (its ``stedgeai`` line and Neural-ART profile from ``truth.json``) and printed as a
Markdown row: ST's epochs (hw = EC blobs without trailing empty ones), the estimate and its range,
the weights (lint / ST's flash image) and the activations (liveness peak / ST's used RAM pools).
The same comparison is asserted by ``tests/test_lint_st_compiles.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blazeear_edge.lint import lint_model, parse_stedgeai_command  # noqa: E402

ST_COMPILES = ROOT.parent / "shared" / "data" / "st-n6-compiles"
KINDS = ("hw", "hybrid", "sw")


def fmt(e: dict) -> str:
    return "+".join(str(e[k]) for k in KINDS)


def main() -> int:
    truth = ST_COMPILES / "truth.json"
    if not truth.is_file():
        print(f"ST compiles not found at {truth}")
        return 0
    print("| model | ST hw+hyb+sw | lint (point) | lint (range) | exact | weights lint / ST "
          "| act. peak / ST RAM |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    exact = 0
    entries = json.loads(truth.read_text())
    for t in entries:
        o = t["options"]
        opts = parse_stedgeai_command(o["command"], o["neural_art_profile"], source="truth.json",
                                  version=t["st_version"])
        rep = lint_model(ST_COMPILES / t["file"], options=opts)
        st = {k: t["epochs"][k] for k in KINDS}
        if t["ec_mode"]:
            st["hw"] -= t.get("empty_ec_blobs") or 0
        m = rep.mapping
        rng = "exact" if m.exact else ", ".join(f"{k} {lo}..{hi}" for k, (lo, hi)
                                                 in m.epochs_range.items() if lo != hi)
        ok = m.epochs == st
        exact += ok
        print(f"| {t['name']}{'' if t['ec_mode'] else ' (no EC)'} | {fmt(st)} | {fmt(m.epochs)} "
              f"| {rng} | {'yes' if ok else 'no'} | {rep.weights_bytes / t['weights_bytes']:.3f} "
              f"| {rep.activations_peak_bytes / t['activations_bytes']:.2f} |")
    print(f"\nexact by kind on {exact} of {len(entries)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
