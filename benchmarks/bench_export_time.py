"""Wall time of ``blazeear-edge export --int8`` (ONNX and TFLite) on this machine.

Runs the command line ``--repeat`` times (default 3) into fresh temporary folders, prints every
wall time and the median against the 120 s target (issue 11: the default export with its int8
weight preparation), then the int8-versus-float SQNR of each format
as the export measured it (``manifest.json``: per output, over anchors whose fp32 score reaches
the manifest's ``relevant_score``, against PyTorch fp32) with the detection parity.

    python benchmarks/bench_export_time.py [--repeat 3] [--target 120]

Exit status 1 when the median misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="export runs (default 3)")
    ap.add_argument("--target", type=float, default=120.0, help="target median, s (default 120)")
    args = ap.parse_args(argv)

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    times, manifest = [], None
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="export_time_") as td:
        for i in range(args.repeat):
            out = Path(td) / f"run{i}"
            cmd = [sys.executable, "-m", "blazeear_edge", "export", "--int8", "--quiet",
                   "--out", str(out)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=td, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr, file=sys.stderr)
                print(f"run {i + 1}: export failed (exit {proc.returncode})", file=sys.stderr)
                return 2
            times.append(dt)
            print(f"run {i + 1}/{args.repeat}: {dt:.1f} s")
            manifest = json.loads((out / "manifest.json").read_text())
    med = statistics.median(times)
    verdict = "met" if med < args.target else "MISSED"
    print(f"\nexport --int8 (onnx + tflite): median {med:.1f} s of {len(times)} runs "
          f"(min {min(times):.1f}, max {max(times):.1f}); target < {args.target:.0f} s: {verdict}")

    print("\nint8 vs float, per format (from the manifest; SQNR in dB on relevant anchors vs "
          "PyTorch fp32):")
    for key in ("int8_onnx", "int8_tflite"):
        a = (manifest or {}).get("artifacts", {}).get(key)
        if not a:
            print(f"  {key}: not exported")
            continue
        v = a["verification"]
        sq = {k: s for k, s in v["sqnr_db"].items() if s is not None}
        d = v.get("detections") or {}
        per = ", ".join(f"{k} {s:.1f}" for k, s in sq.items())
        print(f"  {a['path']}: min {min(sq.values()):.1f} dB ({per}); detections "
              f"{d.get('matched')}/{d.get('ref')} matched, {d.get('extra')} extra, "
              f"{v.get('images')} images")
    return 0 if med < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
