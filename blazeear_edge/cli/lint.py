"""``blazeear-edge lint``: ST Edge AI layer-support linter for the STM32N6 NPU."""

from __future__ import annotations

HELP = ("check an ONNX/TFLite model against ST Edge AI Core's rules for the STM32N6 NPU and "
        "estimate what runs in hardware, hybrid and software")


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="a .onnx (float, QDQ, ...) or .tflite file")
    p.add_argument("--target", default="stm32n6", choices=["stm32n6"],
                   help="target (default stm32n6)")
    p.add_argument("--format", default="text", choices=["text", "json"], dest="output_format",
                   help="text table (default) or the JSON report documented in the README")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--float-io", action="store_true",
                   help="estimate as if stedgeai keeps float I/O types (the model's input/output "
                        "Q/DQ then count as software epochs); default: integer I/O types")
    p.add_argument("--assume-int8", action="store_true",
                   help="place a float model's operators as if it were quantised to int8")
    p.add_argument("--ops", action="store_true", help="text: also list every operator's placement")


def run(args) -> int:
    import json

    from ..lint import lint_model

    rep = lint_model(args.model, target=args.target, float_io=args.float_io,
                     assume_int8=args.assume_int8)
    if args.output_format == "json":
        print(json.dumps(rep.to_dict(), indent=2))
    else:
        print(rep.format_text(show_ops=args.ops))
    return rep.exit_code(strict=args.strict)
