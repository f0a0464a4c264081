"""``blazeear-edge lint``: ST Edge AI layer-support linter for the STM32N6 NPU.

The estimate describes one stedgeai compile; the options that change it use stedgeai's own names
(``--input-data-type``, ``--output-data-type``) plus ``--no-epoch-controller``. Without them, a
model inside an export folder is estimated with the options of the ``stedgeai`` line its
``manifest.json`` gives, and any other model with stedgeai's defaults.
"""

from __future__ import annotations

HELP = ("check an ONNX/TFLite model against ST Edge AI Core's rules for the STM32N6 NPU and "
        "estimate what runs in hardware, hybrid and software")
IO_TYPES = ("float32", "int8", "uint8")


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="a .onnx (float, QDQ, ...) or .tflite file")
    p.add_argument("--target", default="stm32n6", choices=["stm32n6"],
                   help="target (default stm32n6)")
    p.add_argument("--format", default="text", choices=["text", "json"], dest="output_format",
                   help="text table (default) or the JSON report documented in docs/lint.md")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--input-data-type", choices=IO_TYPES, default=None,
                   help="as stedgeai's option: float32 keeps the input conversion in software; "
                        "default: absorbed (an integer input buffer)")
    p.add_argument("--output-data-type", choices=IO_TYPES, default=None,
                   help="as stedgeai's option: int8/uint8 remove the output DequantizeLinear "
                        "(software epochs); default: the type the model file stores")
    p.add_argument("--no-epoch-controller", action="store_true",
                   help="count for a build without --enable-epoch-controller (every hardware "
                        "epoch its own block); default: epoch controller on, as in ST's profiles")
    p.add_argument("--stedgeai", metavar="COMMAND", default=None,
                   help="read the options from this 'stedgeai generate ...' line")
    p.add_argument("--st-version", metavar="X.Y", default=None,
                   help="ST Edge AI Core version of the compile (e.g. 2.1): 2.x lays the weight "
                        "image out differently (no conv biases, 3x3 depthwise kernels inflated); "
                        "default: the payload, as 3.x/4.x store it")
    p.add_argument("--float-io", action="store_true",
                   help="alias for --input-data-type float32 --output-data-type float32")
    p.add_argument("--assume-int8", action="store_true",
                   help="place a float model's operators as if it were quantised to int8")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="write the predicted epoch timeline (one bar per epoch, hw / hybrid / "
                        "sw, its time and operators) to this PNG")
    p.add_argument("--ops", action="store_true",
                   help="text: also list every operator's placement and its rule")


def run(args) -> int:
    import json

    from ..lint import lint_model

    rep = lint_model(args.model, target=args.target, input_data_type=args.input_data_type,
                     output_data_type=args.output_data_type,
                     epoch_controller=False if args.no_epoch_controller else None,
                     stedgeai_command=args.stedgeai, float_io=args.float_io,
                     assume_int8=args.assume_int8, st_version=args.st_version)
    if args.plot:
        _plot(rep, args.plot)
    if args.output_format == "json":
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        print(rep.format_text(show_ops=args.ops))
    return rep.exit_code(strict=args.strict)


def _plot(rep, path) -> None:
    from pathlib import Path

    from ..errors import BlazeEarError
    from ..lint.latency import plot_timeline

    out = Path(path)
    if out.is_dir():
        raise BlazeEarError(f"{out}: --plot wants a PNG file name, not a directory")
    if not out.parent.is_dir():
        raise BlazeEarError(f"{out}: cannot write the plot (no directory {out.parent})")
    if rep.latency is None:
        raise BlazeEarError(f"{rep.model}: no latency prediction to plot")
    try:
        plot_timeline(rep.latency, out, title=Path(rep.model).name)
    except OSError as exc:
        raise BlazeEarError(f"{out}: cannot write the plot ({exc.strerror or exc})") from None
