"""``lint`` against the 5 real ST compiles whose model files are not here, on rebuilt models.

``python benchmarks/lint_unseen.py [--rebuild] [--only NAME ...]``

Each architecture is rebuilt from its public definition by a builder in ``benchmarks/st_unseen/``
(random or public weights, random calibration, quantised the way ST's file was: TFLite full
integer or ONNX Runtime QDQ per channel), cached under ``$ST_UNSEEN_CACHE``
(``/tmp/blazeear_st_unseen``), then linted with the options of ST's compile and printed as a
Markdown row against ST's figures from ``../shared/docs/st-n6-compiles.md`` (each with the line
it comes from). A second table checks the rebuilds: ``lint``'s weights and MACs on the rebuild
against what the same doc reports ``lint`` gave on ST's real file. These models were not used to
write the lint rules: they are unseen evidence, the rules are not tuned on them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from blazeear_edge.lint import lint_model, parse_stedgeai_command  # noqa: E402
from st_unseen import (_common, deeplab_v3, hand_landmark, mobilenetv2_a100,  # noqa: E402
                       osnet_a025, stft_tcnn)

DOC = "../shared/docs/st-n6-compiles.md"
KINDS = ("hw", "hybrid", "sw")

#: ST's compile options (stedgeai line and Neural-ART profile), as in ST's repositories
_REID_PROFILE = ("-O3 --all-buffers-info --cache-maintenance --Oauto-sched --native-float "
                 "--enable-virtual-mem-pools --Omax-ca-pipe 4 --Ocache-opt --Os "
                 "--enable-epoch-controller")
_HAND_PROFILE = ("--enable-epoch-controller -O3 --all-buffers-info --mvei --cache-maintenance "
                 "--Oalt-sched --native-float --enable-virtual-mem-pools --Omax-ca-pipe 4 "
                 "--Ocache-opt --Os")
_AUDIO_PROFILE = ("--Ocache-opt -O3 --Os --native-float --mvei --Omax-ca-pipe 4 "
                  "--cache-maintenance --csv-file network --all-buffers-info")

#: ST's figures: epochs hw+hybrid+sw (hw = EC blobs in EC builds), flash image bytes, used RAM
#: pools bytes; ``doc`` the lines of DOC they come from; ``lint_real`` what the doc reports
#: ``lint`` gave on ST's real file (weights B, MACs), to check the rebuild.
ST = {
    "deeplab_v3_mobilenetv2_05_16_320": dict(
        builder=deeplab_v3, epochs=(6, 6, 2), weights=982_769, ram=2_645_504, doc="78, 109",
        lint_real=(888_888, 396_822_528),
        build="ST Edge AI 2.1, EC, --Oalt-sched",
        command=("stedgeai generate --model deeplab_v3_mobilenetv2_05_16_320_fft_qdq_int8.onnx "
                 "--target stm32n6 --st-neural-art default@user_neuralart_STM32N6570-DK.json "
                 "--input-data-type uint8 --output-data-type uint8 --inputs-ch-position chlast "
                 "--outputs-ch-position chlast"),
        profile="-O3 --Oalt-sched --enable-epoch-controller"),
    "stft_tcnn_medium_257x40": dict(
        builder=stft_tcnn, epochs=(34, 8, 8), weights=1_659_665, ram=102_492, doc="81, 111",
        lint_real=(1_612_800, 63_528_960),
        build="ST Edge AI 2.2, no EC",
        command=("stedgeai generate -m stft_tcnn_int8_static_40.onnx --target stm32n6 "
                 "--st-neural-art default@user_neural_art.json"),
        profile=_AUDIO_PROFILE),
    "hand_landmark_full_224": dict(
        builder=hand_landmark, epochs=(3, 0, 4), weights=3_323_986, ram=1_103_872,
        doc="85, 114 (weights: rounded pool figure)", lint_real=(2_774_048, 330_968_800),
        build="ST Edge AI 2.1, EC",
        command=("stedgeai generate --name hand_landmark --model "
                 "033_hand_landmark_full_quant_pc_uf_handl.tflite --target stm32n6 "
                 "--st-neural-art hand_landmark@user_neuralart.json"),
        profile=_HAND_PROFILE),
    "osnet_a025_256_128": dict(
        builder=osnet_a025, epochs=(15, 0, 16), weights=162_065, ram=950_303, doc="86, 115",
        lint_real=(148_336, 82_249_344),
        build="ST Edge AI 3.0, EC",
        command=("stedgeai generate --name reid --no-outputs-allocation --model "
                 "osnet_a025_256_128_tfs_int8.tflite --target stm32n6 --st-neural-art "
                 "reid@user_neuralart_STM32N6570-DK.json --input-data-type uint8 "
                 "--output-data-type uint8"),
        profile=_REID_PROFILE),
    "mobilenetv2_a100_256_128": dict(
        builder=mobilenetv2_a100, epochs=(1, 0, 0), weights=2_432_337, ram=1_179_648,
        doc="87, 116", lint_real=(2_257_984, 195_588_096),
        build="ST Edge AI 3.0, EC",
        command=("stedgeai generate --name reid --no-outputs-allocation --model "
                 "mobilenetv2_a100_256_128_fft_int8.tflite --target stm32n6 --st-neural-art "
                 "reid@user_neuralart_NUCLEO-N657X0-Q.json --input-data-type uint8 "
                 "--output-data-type uint8"),
        profile=_REID_PROFILE),
}


def version_of(st: dict) -> str:
    """The ST Edge AI version ("x.y") of a compile, from its ``build`` description."""
    return re.search(r"ST Edge AI (\d+\.\d+)", st["build"]).group(1)


def fmt(e) -> str:
    return "+".join(str(v) for v in e)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rebuild", action="store_true", help="rebuild the cached models")
    ap.add_argument("--only", nargs="+", choices=sorted(ST), help="these models only")
    args = ap.parse_args(argv)
    rows, checks, within = [], [], 0
    names = args.only or list(ST)
    for name in names:
        st = ST[name]
        b = st["builder"]
        try:
            path, secs = _common.cached(b.FILE, b.build, force=args.rebuild)
        except (OSError, ImportError) as exc:
            rows.append(f"| {name} | {b.SOURCE} | not built: {exc} | | | | | | |")
            continue
        opts = parse_stedgeai_command(st["command"], st["profile"], source=f"{DOC} ({name})",
                                      version=version_of(st))
        rep = lint_model(path, options=opts)
        pred = tuple(rep.mapping.epochs[k] for k in KINDS)
        diff = abs(sum(pred) - sum(st["epochs"]))
        within += diff <= 2
        built = "cached" if secs is None else f"{secs:.0f} s"
        rows.append(f"| {name}{'' if opts.epoch_controller else ' (no EC)'} | {b.SOURCE} "
                    f"| {fmt(st['epochs'])} = {sum(st['epochs'])} | {fmt(pred)} = {sum(pred)} "
                    f"| {diff} | {'yes' if diff <= 2 else 'no'} "
                    f"| {rep.weights_bytes / st['weights']:.2f} "
                    f"| {rep.activations_peak_bytes / st['ram']:.2f} | {built} |")
        w_real, macs_real = st["lint_real"]
        checks.append(f"| {name} | {rep.weights_bytes:,} | {w_real:,} | {rep.macc:,} "
                      f"| {macs_real:,} | {rep.activations_peak_bytes:,} |")
    print("| model | rebuilt from | ST hw+hyb+sw | lint hw+hyb+sw | abs. total diff | within 2 "
          "| weights lint / ST | act. peak / ST RAM | build |")
    print("| --- | --- | --- | --- | ---: | --- | ---: | ---: | --- |")
    print("\n".join(rows))
    print(f"\ntotal epochs within 2 on {within} of {len(names)}")
    print(f"ST's figures: {DOC}, lines " + "; ".join(f"{n} {ST[n]['doc']}" for n in names))
    print("\n| model | lint weights B, rebuild | lint weights B, ST's file (doc) | lint MACs, "
          "rebuild | lint MACs, ST's file (doc) | lint act. peak B, rebuild |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(checks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
