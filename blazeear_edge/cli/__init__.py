"""The ``blazeear-edge`` command line: parsing and printing only.

Each sub-command lives in its own module of this package and exposes

* ``HELP``: one line for ``blazeear-edge --help``;
* ``add_arguments(parser)``: its options;
* ``run(args) -> int``: calls the library and prints; returns the exit status.

Modules import only ``argparse`` at top level so ``--help`` stays fast; heavy libraries (torch,
tensorflow, onnxruntime) are imported inside ``run``.  A module that is not there yet is simply not
listed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from ..errors import BlazeEarError

# Pipeline order: model -> export -> lint -> parity -> bench.
COMMANDS = ["detect", "calib", "export", "lint", "parity", "evaluate", "harness", "bench", "cloud"]


def _load_commands():
    mods = {}
    for name in COMMANDS:
        modname = f"{__name__}.{name}"
        try:
            mods[name] = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # the command is not written yet
            if exc.name != modname:
                raise
    return mods


def emit_report(report, fmt: str = "text", json_path: str | None = None) -> None:
    """Print a report object (``to_dict()`` and ``format_text()``) as text or JSON on stdout,
    and also write its JSON to ``json_path`` when given. Shared by the report commands."""
    import json
    from pathlib import Path

    d = report.to_dict()
    if json_path:
        Path(json_path).write_text(json.dumps(d, indent=1) + "\n")
    if fmt == "json":
        json.dump(d, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(report.format_text())


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="blazeear-edge",
        description="Take a BlazeEar / BlazeFace detector to the STM32N6 NPU and prove on the host "
        "that the board's output is what the model means.",
    )
    parser.add_argument("--version", action="version", version=f"blazeear-edge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, mod in _load_commands().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except BlazeEarError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"blazeear-edge {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
