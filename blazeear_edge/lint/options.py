"""The ``stedgeai`` options the epoch estimate depends on, in stedgeai's own vocabulary.

What a compile costs depends on three choices the user makes on ST's command line, not only on the
model file (``../shared/docs/st-n6-compiles.md``, sections 1 and 3):

* ``--input-data-type float32|int8|uint8``: with an integer type (and, in ST Edge AI 2.x, even with
  none given) the model's input QuantizeLinear is absorbed; with ``float32`` it stays a software
  epoch. Default here: absorbed, as every ST compile examined did.
* ``--output-data-type float32|int8|uint8``: default, as stedgeai does, is what the model file
  stores. A float output behind a DequantizeLinear then costs one software epoch per output
  (``ll_sw_forward_dequantizelinear``); an integer type removes them.
* the epoch controller (``--enable-epoch-controller`` in the Neural-ART profile, on in every ST
  camera application): with it, a maximal run of hardware epochs is one EC blob; without it
  (``--no-epoch-controller`` here) every hardware epoch is its own.

:func:`parse_stedgeai_command` reads these from a ``stedgeai generate`` line (and optionally the
Neural-ART profile string), so ``lint`` on an export describes the compile its manifest tells the
user to run; :func:`options_from_manifest` is the one place that reads a manifest for it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import BlazeEarError

IO_TYPES = ("float32", "int8", "uint8")


@dataclass(frozen=True)
class StedgeaiOptions:
    """The compile the estimate describes. ``None`` I/O types mean "not given" (stedgeai's
    default: input conversion absorbed, outputs as the model file stores them)."""

    input_data_type: str | None = None
    output_data_type: str | None = None
    epoch_controller: bool = True
    source: str = "defaults"  #: where the options came from (shown in the reports)
    #: ST Edge AI Core version of the compile, "major.minor" (``None``: not known, taken as the
    #: current 3.x/4.x); only the weight-image estimate depends on it (footprint.py)
    version: str | None = None

    def __post_init__(self):
        for field, v in (("input_data_type", self.input_data_type),
                         ("output_data_type", self.output_data_type)):
            if v is not None and v not in IO_TYPES:
                raise BlazeEarError(f"{field} {v!r}: expected one of {', '.join(IO_TYPES)}")
        if self.version is not None and parse_version(self.version) is None:
            raise BlazeEarError(f"ST Edge AI version {self.version!r}: expected e.g. 2.1 or 4.0")

    @property
    def float_input(self) -> bool:
        return self.input_data_type == "float32"

    def describe(self) -> str:
        """One line naming the mode counted (text report)."""
        i = self.input_data_type or "default (conversion absorbed)"
        o = self.output_data_type or "as stored in the model"
        ec = "epoch controller on (hw = EC blobs)" if self.epoch_controller else \
            "no epoch controller (hw = scheduler epochs)"
        v = f", ST Edge AI {self.version}" if self.version else ""
        return f"input {i}, output {o}, {ec}{v}; options from {self.source}"

    def to_dict(self) -> dict:
        return {"input_data_type": self.input_data_type,
                "output_data_type": self.output_data_type,
                "epoch_controller": self.epoch_controller, "source": self.source,
                "version": self.version}


def parse_version(text) -> tuple[int, int] | None:
    """(major, minor) of an ST Edge AI Core version string: "2.1", "v2.1.0-20182",
    "ST Edge AI Core 4.0 branch (STAI-3.0.0-254)" (the first x.y found); None when there is none."""
    m = re.search(r"(\d+)\.(\d+)", str(text or ""))
    return (int(m.group(1)), int(m.group(2))) if m else None


def parse_stedgeai_command(line: str, profile: str | None = None,
                           source: str = "stedgeai command line",
                           version: str | None = None) -> StedgeaiOptions:
    """Options of a ``stedgeai generate ...`` line (``profile``: the Neural-ART option string of
    the profile named by ``--st-neural-art``, when known).

    The epoch controller is taken as on unless the line or the profile says otherwise: ST's
    application profiles all enable it, and a profile file named on the line cannot be read here.
    Unknown options are ignored; a malformed I/O type is a :class:`BlazeEarError`.
    ``version``: the ST Edge AI Core version that ran the line (any string holding "x.y"),
    which the line itself does not say.
    """
    if version is not None:
        v = parse_version(version)
        if v is None:
            raise BlazeEarError(f"{source}: ST Edge AI version {version!r} (expected e.g. 2.1)")
        version = f"{v[0]}.{v[1]}"
    try:
        words = shlex.split(line or "")
    except ValueError as exc:
        raise BlazeEarError(f"{source}: cannot parse the stedgeai command ({exc})") from None
    vals: dict[str, str] = {}
    for i, w in enumerate(words):
        key, eq, val = w.partition("=")
        if key in ("--input-data-type", "--output-data-type"):
            if not eq:
                val = words[i + 1] if i + 1 < len(words) else ""
            vals[key] = val.lower()
    tokens = set(words) | set((profile or "").split())
    ec = True
    if "--no-epoch-controller" in tokens:
        ec = False
    elif profile is not None:
        ec = "--enable-epoch-controller" in tokens
    for key, val in vals.items():
        if val not in IO_TYPES:
            raise BlazeEarError(f"{source}: {key} {val!r} (expected one of {', '.join(IO_TYPES)})")
    return StedgeaiOptions(vals.get("--input-data-type"), vals.get("--output-data-type"), ec,
                           source, version)


def options_from_manifest(model_path) -> StedgeaiOptions | None:
    """The options of the ``stedgeai`` line that an export's ``manifest.json`` gives for this
    model file (``None`` when there is no manifest beside it or no line names the file).

    The only function of the linter that reads a manifest; it reads it defensively (any JSON shape)
    so a manifest of another version cannot break linting, but a line that names the file and
    cannot be parsed is an error, since the estimate would otherwise describe another compile.
    """
    p = Path(model_path)
    man = p.parent / "manifest.json"
    try:
        data = json.loads(man.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    st = data.get("stedgeai") if isinstance(data, dict) else None
    if not isinstance(st, dict):
        return None
    for key, line in st.items():
        if not isinstance(line, str) or not line.lstrip().startswith("stedgeai"):
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        models = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--model", "-m")]
        if any(Path(m).name == p.name for m in models):
            return parse_stedgeai_command(line, source=f"{man} ({key})")
    return None


def merge(base: StedgeaiOptions, *, input_data_type=None, output_data_type=None,
          epoch_controller=None, version=None, source: str = "command line") -> StedgeaiOptions:
    """``base`` with the options given explicitly (not ``None``) overriding it."""
    if version is not None:
        v = parse_version(version)
        if v is None:
            raise BlazeEarError(f"ST Edge AI version {version!r}: expected e.g. 2.1 or 4.0")
        version = f"{v[0]}.{v[1]}"
    changes = {k: v for k, v in (("input_data_type", input_data_type),
                                 ("output_data_type", output_data_type),
                                 ("epoch_controller", epoch_controller),
                                 ("version", version)) if v is not None}
    if not changes:
        return base
    src = source if base.source == "defaults" else f"{base.source}, overridden by {source}"
    return replace(base, source=src, **changes)


__all__ = ["StedgeaiOptions", "IO_TYPES", "parse_stedgeai_command", "parse_version",
           "options_from_manifest", "merge"]
