"""Cortex-M55 instructions per frame of the C post-processing (QEMU mps3-an547, -icount).

QEMU models no cycle timing: the figure is guest *instructions*, counted through SysTick with
``-icount shift=0`` (deterministic: the same binary and inputs give the same count). It runs
``blazeear-edge harness EXPORT_DIR --m55`` on real images and prints the per-frame figures.

    python benchmarks/bench_m55.py EXPORT_DIR [--count 8] [--images SRC]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export_dir")
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--images", default=None)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as td:
        js = Path(td) / "r.json"
        cmd = [sys.executable, "-m", "blazeear_edge", "harness", a.export_dir, "--m55",
               "--no-synthetic", "--count", str(a.count), "--json", str(js)]
        if a.images:
            cmd += ["--images", a.images]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stdout + res.stderr, file=sys.stderr)
            return res.returncode
        rows = json.loads(js.read_text())
    rows = rows.get("m55", []) if isinstance(rows, dict) else rows
    instr = [int(round(r["instructions"])) for r in rows if r.get("instructions")]
    print(res.stdout.strip())
    if instr:
        print(f"\nM55 instructions per frame over {len(instr)} real images: median "
              f"{statistics.median(instr):,.0f}, min {min(instr):,}, max {max(instr):,} "
              f"(at 800 MHz and 1 instruction/cycle that is {statistics.median(instr) / 800:.1f} us;"
              f" QEMU counts instructions, not cycles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
