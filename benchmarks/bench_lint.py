"""How long ``lint`` takes on real models (it replaced a wall-clock limit in the unit tests).

``python benchmarks/bench_lint.py [--repeats 5] [--export DIR]``

For every model in ``../shared/data/st-n6-compiles`` (skipped when absent) and the int8 artifacts
of an export folder (``--export``), prints the median over ``--repeats`` runs of
``lint_model`` on the file (read, rules, estimate, report), and its ratio to the median time of
only reading the file into the linter's graph: what the rules and the estimate add.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _common import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blazeear_edge.lint import lint_model, read_model  # noqa: E402

ST_COMPILES = ROOT.parent / "shared" / "data" / "st-n6-compiles"


def median_s(fn, repeats: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--export", type=Path, default=None, help="an export folder")
    args = ap.parse_args(argv)
    files = sorted(ST_COMPILES.glob("*.onnx")) + sorted(ST_COMPILES.glob("*.tflite")) \
        if ST_COMPILES.is_dir() else []
    if args.export:
        files += sorted(args.export.glob("*_int8.*"))
    if not files:
        print(f"no models: {ST_COMPILES} is absent and no --export given")
        return 1
    print(f"# lint time, median of {args.repeats} ({cpu_name()})")
    print("| model | size KiB | read ms | lint ms | lint / read |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for f in files:
        read = median_s(lambda: read_model(f), args.repeats)
        full = median_s(lambda: lint_model(f), args.repeats)
        print(f"| {f.name} | {f.stat().st_size / 1024:.0f} | {read * 1e3:.1f} | "
              f"{full * 1e3:.1f} | {full / read:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
