"""Cortex-M55 instructions per frame of the C post-processing (QEMU mps3-an547, -icount).

QEMU models no cycle timing: the figure is guest *instructions*, counted through SysTick with
``-icount shift=0`` (deterministic: the same binary and inputs give the same count). It runs the
export's int8 artifact on real images -- the 8 built-in hold-out images (astronaut + LFW faces)
and the first ``--ear210`` photos of ``../shared/data/ear210`` when present -- adds the
hand-built worst case (``all_above_disjoint``: every anchor above the threshold, each its own
box, so NMS cannot merge anything), runs them through the C code on the host and the emulated
M55, checks every frame bit-exact against the NumPy decode, and prints median / max per image
set next to the worst case.

    python benchmarks/bench_m55.py EXPORT_DIR [--ear210 40] [--max-candidates K] [--json F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

EAR210 = Path(__file__).resolve().parents[2] / "shared" / "data" / "ear210" / "images"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export_dir")
    ap.add_argument("--ear210", type=int, default=40, help="ear210 photos to add (0 = none)")
    ap.add_argument("--max-candidates", type=int, default=None,
                    help="override the manifest's decode.max_candidates (0 = no cap)")
    ap.add_argument("--json", default=None, help="also write the figures as JSON")
    a = ap.parse_args(argv)

    from blazeear_edge.calib_data import builtin_holdout, load_images, resolve_source
    from blazeear_edge.harness import (WORST_CASE_VECTOR, export_outputs, harness_model,
                                       make_vectors, run_harness, synthetic_vectors)
    from blazeear_edge.manifest import load_manifest

    manifest = load_manifest(a.export_dir)
    model = harness_model(manifest)
    if a.max_candidates is not None:
        model = replace(model, config=replace(model.config, max_candidates=a.max_candidates))
    sets = [("built-in hold-out", "builtin", 8)]
    if a.ear210 and EAR210.is_dir():
        sets.append(("ear210", str(EAR210), a.ear210))
    vectors, groups = [], {}
    for label, src, count in sets:
        kind, samples = resolve_source(src)
        if kind == "builtin":
            samples = builtin_holdout(samples)
        imgs = load_images(samples, count=count, shuffle=False, source=src, kind=kind,
                           progress=False)
        outs = export_outputs(manifest, model, imgs.nhwc, imgs.nchw)
        groups[label] = range(len(vectors), len(vectors) + len(outs))
        vectors += make_vectors(model, outs, names=[f"{label[:3]}:{n}" for n in imgs.names],
                                letterboxes=imgs.letterboxes, source=model.artifact)
    worst = [v for v in synthetic_vectors(model) if v.name == WORST_CASE_VECTOR]
    vectors += worst
    with tempfile.TemporaryDirectory() as td:
        rep = run_harness(model, vectors, td, ("host", "m55"))
    m55 = rep.results["m55"]
    out = {"export": a.export_dir, "max_candidates": model.config.max_candidates,
           "bit_exact": {t: rep.bit_exact(t) for t in rep.results}, "sets": {}}
    k = model.config.max_candidates
    print(f"C post-processing on the Cortex-M55 (QEMU -icount: instructions, not cycles); "
          f"candidate cap max_candidates = {k or 'none'}; host and M55 bit-exact: "
          f"{rep.bit_exact('host') and rep.bit_exact('m55')}")
    for label, idx in groups.items():
        ins = [m55[i].instructions for i in idx]
        d = {"frames": len(ins), "median": statistics.median(ins), "min": min(ins),
             "max": max(ins)}
        out["sets"][label] = d
        print(f"  {label:18s} {d['frames']:3d} frames: median {d['median']:>10,.0f}, "
              f"min {d['min']:>10,.0f}, max {d['max']:>10,.0f}")
    w = m55[-1]
    out["worst_case"] = {"name": w.name, "instructions": w.instructions,
                         "decode": w.instructions_decode, "nms": w.instructions_nms,
                         "detections": w.expected}
    print(f"  worst case ({w.name}: all 896 anchors above the threshold, {w.expected} "
          f"detections): {w.instructions:,.0f} instructions (threshold + sort + decode "
          f"{w.instructions_decode:,.0f}, NMS {w.instructions_nms:,.0f})")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=float) + "\n")
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
