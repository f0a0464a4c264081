"""Predicted STM32N6570-DK inference time and memory against ST's published figures.

``python benchmarks/n6_latency.py [--fit] [--no-build] [--write-readme]``

1. Rebuilds the corpus (``benchmarks/n6_truth/modelzoo.py``: every row an ST model-zoo README
   figure with its path and commit): Keras applications with random weights quantised int8 by
   the TF Lite converter (``benchmarks/n6_corpus/build_keras.py``, cached under
   ``benchmarks/.cache/n6``), ``benchmarks/st_unseen`` builders, and the model files under
   ``../shared/data``.
2. Lints each (``lint_model``, with the row's ST Edge AI version; the file's own I/O types, as
   the zoo's "default configuration"; BlazeFace with the FaceDetection app's stedgeai line) and
   predicts its time and memory (``blazeear_edge.lint.latency``).
3. ``--fit``: fits the undocumented constants of ``latency.py`` on the declared ``TRAINING``
   rows only (log-error least squares, scipy) and prints them, to be pasted into the module.
4. Prints predicted vs ST per model (ms, internal RAM, external RAM, weights flash), training and
   held-out rows apart with their error statistics, and per epoch for the ``network.c`` compiles
   with compiler cycle estimates (``benchmarks/n6_truth/network_c_epochs.json``).
   ``--write-readme`` puts the tables into ``benchmarks/README.md`` between markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from blazeear_edge.lint import lint_model, read_model  # noqa: E402
from blazeear_edge.lint import latency as L  # noqa: E402
from n6_truth.modelzoo import EXCLUDED, ROWS, ZOO  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
CACHE = Path(os.environ.get("N6_CORPUS_CACHE", ROOT / "benchmarks" / ".cache" / "n6"))
NETC = ROOT / "benchmarks" / "n6_truth" / "network_c_epochs.json"
README = ROOT / "benchmarks" / "README.md"
MARK = ("<!-- n6_latency:begin -->", "<!-- n6_latency:end -->")

#: the declared training subset (every family represented once or twice; the rest is held out)
TRAINING = ("mnv2_0.35_128_c101", "mnv2_1.0_224_c1000", "mnv1_0.25_224_c1000",
            "mnv1_1.0_224_c101", "effv2_B0_224_c101", "effv2_B2_260_c1000",
            "fdmnv1_0.25_224_c101", "blazeface_front_128", "st_movenet_lightning_heatmaps_192")

#: stedgeai lines of the compiles that are known (others: the file's types, stedgeai default)
COMMANDS = {"blazeface_front_128": (
    "stedgeai generate --model blazeface_front_128_quant_pc_ff_od_wider_face.tflite "
    "--target stm32n6 --input-data-type uint8 --output-data-type int8")}

#: bounds of each fitted constant (physical ranges) for ``--fit``
BOUNDS = {"ACT_BW": (0.5e9, 20e9), "EFF_CONV": (0.02, 1.0), "EFF_DW": (0.005, 1.0),
          "T_HW_EPOCH": (0.0, 200e-6), "T_HYBRID": (0.0, 500e-6), "T_SW": (0.0, 500e-6),
          "SW_CYCLES_PER_ELEM": (1.0, 200.0), "T_INFERENCE": (0.0, 2e-3)}


def model_path(row, build: bool) -> Path | None:
    kind, what = row["model"].split(":", 1)
    if kind == "shared":
        p = SHARED / what
        return p if p.is_file() else None
    if kind == "keras":
        p = CACHE / f"{what}.tflite"
        if not p.is_file() and build:
            subprocess.run([sys.executable, str(ROOT / "benchmarks/n6_corpus/build_keras.py"),
                            what], check=False)
        return p if p.is_file() else None
    if kind == "unseen":
        import importlib

        mod = importlib.import_module(f"st_unseen.{what}")
        from st_unseen import _common

        p = _common.CACHE / mod.FILE
        if not p.is_file() and build:
            _common.cached(mod.FILE, mod.build)
        return p if p.is_file() else None
    raise ValueError(row["model"])


def load(build: bool):
    items = []
    for row in ROWS:
        p = model_path(row, build)
        if p is None:
            print(f"  skip {row['name']}: model not available ({row['model']})", file=sys.stderr)
            continue
        ver = ".".join(row["st"].split(".")[:2])
        rep = lint_model(p, stedgeai_command=COMMANDS.get(row["name"]), st_version=ver,
                         use_manifest=False)
        items.append((row, read_model(p), rep))
    return items


def predict_all(items, p=None):
    out = []
    for row, g, rep in items:
        lat = L.predict(g, rep.mapping, rep.weights_bytes, p)
        out.append((row, rep, lat))
    return out


def fit(items):
    from scipy.optimize import least_squares

    names = list(BOUNDS)
    train = [it for it in items if it[0]["name"] in TRAINING]
    base = L.params()
    x0 = np.array([base[n] for n in names], float)
    scale = np.array([max(abs(v), 1e-6) for v in x0])

    def resid(x):
        p = dict(base, **{n: v for n, v in zip(names, x * scale)})
        return [math.log(L.predict(g, rep.mapping, rep.weights_bytes, p).inference_ms / row["ms"])
                for row, g, rep in train]

    lo = np.array([BOUNDS[n][0] for n in names]) / scale
    hi = np.array([BOUNDS[n][1] for n in names]) / scale
    r = least_squares(resid, np.clip(x0 / scale, lo, hi), bounds=(lo, hi), diff_step=1e-3)
    best = dict(base, **{n: v for n, v in zip(names, r.x * scale)})
    print("fitted on", len(train), "rows:")
    for n in names:
        print(f"  {n} = {best[n]:.6g}")
    return best


def fit_ram(items):
    """RAM_FACTOR: median of ST's internal+external RAM / the working set, training rows."""
    ratios = [(row["int_kib"] + row["ext_kib"]) * 1024 / L.working_set(g)
              for row, g, rep in items if row["name"] in TRAINING]
    return float(np.median(ratios))


def err(pred, truth):
    return pred / truth - 1 if truth else float("nan")


def stats(vals):
    a = np.abs(np.array([v for v in vals if not math.isnan(v)]))
    if not len(a):
        return "-"
    return f"median {np.median(a):.1%}, p90 {np.percentile(a, 90):.1%} (n={len(a)})"


def table(res, which):
    rows = [r for r in res if (r[0]["name"] in TRAINING) == (which == "training")]
    head = ("| model | ST ms | pred ms | err | ST int RAM KiB | pred | err | ST ext RAM KiB | pred "
            "| ST weights KiB | pred | err | epochs hw+hyb+sw | STEdgeAI | ST source |")
    lines = [head, "|" + "---|" * 15]
    e_t, e_r, e_w = [], [], []
    for row, rep, lat in rows:
        ms, ir = lat.inference_ms, lat.internal_ram_bytes / 1024
        xr, w = lat.external_ram_bytes / 1024, lat.weights_flash_bytes / 1024
        et, er, ew = err(ms, row["ms"]), err(ir, row["int_kib"]), err(w, row["w_kib"])
        e_t.append(et)
        e_r.append(er)
        e_w.append(ew)
        e = rep.mapping.epochs
        lines.append(f"| {row['name']} | {row['ms']:g} | {ms:.2f} | {et:+.0%} | {row['int_kib']:g} "
                     f"| {ir:.0f} | {er:+.0%} | {row['ext_kib']:g} | {xr:.0f} | {row['w_kib']:g} "
                     f"| {w:.1f} | {ew:+.0%} | {e['hw']}+{e['hybrid']}+{e['sw']} | {row['st']} "
                     f"| `{row['src']}` @{row['commit'][:7]} |")
    within = lambda es, t: sum(abs(x) <= t for x in es) / max(len(es), 1)  # noqa: E731
    summary = (f"**{which}** ({len(rows)} models): time {stats(e_t)}, within 30%: "
               f"{within(e_t, 0.30):.0%}; internal RAM {stats(e_r)}, within 15%: "
               f"{within(e_r, 0.15):.0%}; weights flash {stats(e_w)}, within 10%: "
               f"{within(e_w, 0.10):.0%}")
    return lines, summary, e_t


def what_if_concat_in_place(items) -> str:
    """A rule seen on held-out rows, so measured and not adopted: a hardware Concat written in
    place by its producers (no traffic of its own)."""
    fused = L.FUSED_KINDS
    rows = []
    try:
        L.FUSED_KINDS = fused | {"Concat"}
        for row, g, rep in items:
            if row["name"] in TRAINING or not any(n.kind == "Concat" for n in g.nodes):
                continue
            now = L.predict(g, rep.mapping, rep.weights_bytes)
            rows.append(f"{row['name']} {err(now.inference_ms, row['ms']):+.0%}")
    finally:
        L.FUSED_KINDS = fused
    return ("Not adopted (suggested by held-out misses, so adopting it would spoil them as a "
            "test): a hardware Concat written in place by its producers would give, on the "
            "held-out rows with a Concat: " + ", ".join(rows) + ".")


def flash_pairs() -> list[str]:
    """(extra weights) / (extra time) for zoo rows equal but for 101 vs 1000 classes."""
    by = {r["name"]: r for r in ROWS}
    out = []
    for name, r in by.items():
        if name.endswith("_c101") and name[:-4] + "c1000" in by:
            b = by[name[:-4] + "c1000"]
            rate = (b["w_kib"] - r["w_kib"]) * 1024 / ((b["ms"] - r["ms"]) * 1e-3)
            out.append(f"{name[:-5]} {rate / 1e6:.0f} MB/s")
    return out


def per_epoch(items_by_name):
    """Predicted epoch shares against the compiler's cycle estimates, where lint's epoch units
    match the compile's block for block."""
    out = []
    for rec in json.loads(NETC.read_text()):
        if not rec["total_tot_cycles"] or not rec.get("model_file"):
            continue
        p = SHARED / rec["model_file"]
        if not p.is_file():
            continue
        io = "--output-data-type int8 --input-data-type uint8"
        rep = lint_model(p, stedgeai_command=f"stedgeai generate --model x {io}",
                         use_manifest=False)
        lat = L.predict(read_model(p), rep.mapping, rep.weights_bytes)
        st_units = ["hw" if b["kind"] == "blob" else b["kind"] for b in rec["blocks"]]
        ours = [e.unit for e in lat.epochs]
        tot_c = rec["total_tot_cycles"]
        line = (f"{rec['name']} ({rec['git_description']}, `{rec['repo']}` `{rec['path']}` "
                f"@{rec['commit'][:7]}): compiler estimate {tot_c:,} cycles = "
                f"{tot_c / 1e6:.2f} ms at 1 GHz; predicted {lat.inference_ms:.2f} ms")
        if st_units != ours:
            out.append((line + f"; epoch units differ (ST {len(st_units)} blocks, lint "
                        f"{len(ours)}): no per-epoch comparison", []))
            continue
        t_ours = sum(e.ms for e in lat.epochs)
        rows = []
        for b, e in zip(rec["blocks"], lat.epochs):
            rows.append((e.index, e.unit, b["tot_cycles"] / tot_c, e.ms / t_ours,
                         b["tot_cycles"], e.ms))
        out.append((line, rows))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--write-readme", action="store_true")
    a = ap.parse_args(argv)
    items = load(build=not a.no_build)
    p = None
    if a.fit:
        p = fit(items)
        p["RAM_FACTOR"] = fit_ram(items)
        print(f"  RAM_FACTOR = {p['RAM_FACTOR']:.4g}")
    res = predict_all(items, p)
    out = [f"Corpus: {len(res)} models with ST's published STM32N6570-DK figures "
           f"(`{ZOO}` READMEs). Predictions at {L.CLOCKS}. Training rows (the declared "
           f"`TRAINING` subset the undocumented constants were fitted on) and held-out rows "
           f"apart. Error = predicted / ST - 1.", ""]
    held_t = []
    for which in ("training", "held-out"):
        lines, summary, e_t = table(res, which)
        out += [f"#### {which}", "", *lines, "", summary, ""]
        if which == "held-out":
            held_t = e_t
    out += ["Excluded: " + "; ".join(f"{k}: {v}" for k, v in EXCLUDED.items()) + ".", ""]
    out += [f"Corpus size: {len(res)} rows, short of 40: the remaining N6 rows of the zoo are "
            "networks defined by ST's own training code (SSD / YOLO / YuNet / DeepLab / ST "
            "FdMobileNet families) or PyTorch models (torchvision is not installed), which this "
            "benchmark does not rebuild yet.", ""]
    out += ["Check of the documented (not fitted) flash rate, 400 MB/s: ST's published pairs that "
            "differ only by the classifier give the extra weights' stream rate directly: "
            + ", ".join(flash_pairs()) + ".", ""]
    out += ["#### per epoch, against the compiler's cycle estimates (`LL_ATON_EB_DBG_INFO`)", ""]
    for line, rows in per_epoch(None):
        out.append("- " + line)
        if rows:
            big = [r for r in rows if r[2] >= 0.05]
            d = [abs(r[3] - r[2]) for r in big]
            out.append(f"  - {len(big)} large epochs (>= 5% of the compiler's total): share "
                       f"error max {max(d) * 100:.1f} pp, median {np.median(d) * 100:.1f} pp; "
                       "all epochs: " + ", ".join(f"#{r[0]} {r[1]} {r[2]:.0%}/{r[3]:.0%}"
                                                  for r in rows if r[2] >= 0.03 or r[3] >= 0.03)
                       + " (ST/predicted share, epochs >= 3%)")
    out.append("")
    out += [what_if_concat_in_place(items), ""]
    if held_t:
        a_ = np.abs(np.array(held_t))
        out.append(f"Held-out time error: median {np.median(a_):.1%}, 90th percentile "
                   f"{np.percentile(a_, 90):.1%} (the band `lint` prints).")
    text = "\n".join(out)
    print(text)
    if a.write_readme:
        body = README.read_text() if README.is_file() else ""
        block = f"{MARK[0]}\n## Predicted N6 inference time vs ST (`benchmarks/n6_latency.py`)\n\n" \
                f"{text}\n{MARK[1]}"
        if MARK[0] in body:
            pre, rest = body.split(MARK[0], 1)
            body = pre + block + rest.split(MARK[1], 1)[1]
        else:
            body = body.rstrip() + "\n\n" + block + "\n"
        tmp = README.with_suffix(".md.tmp")
        tmp.write_text(body)
        tmp.replace(README)
    return 0


if __name__ == "__main__":
    sys.exit(main())
