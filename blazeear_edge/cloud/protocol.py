"""The request bodies of the Developer Cloud, built field for field as ST's client builds them.

ST's client (``stm32ai_dc`` in stm32ai-modelzoo-services) turns a ``CliParameters`` named tuple
into a dictionary: every field that is not ``None``, in declaration order, enum members by value,
skipping ``model``, ``output`` and ``atonnOptions``; then ``atonnOptions`` (dumped with their
dashed names) and the model name.  The benchmark adds ``version`` (the Developer Cloud version of
ST Edge AI Core, resolved from ``assets/versions.json``) and is sent as JSON - flat, or as the
legacy ``{"model", "args": "<json string>"}`` when the benchmark service's OpenAPI
(``api/benchmark/api``) declares only those two properties.  Analyze sends the same fields in the
form field ``args`` (plus ``statsType``), the version in its URL.

Why copy the defaults verbatim (``series: "stm32f4"``, ``includeLibraryForIde: "gcc"``...) instead
of sending only what matters: the service is only known through ST's client, so the safest body is
the one it is used to.  For STM32N6 boards the non-default values are those of ST's N6 request:
target ``stm32n6``, Neural-ART profile ``"default"`` and the epoch controller on.

Everything here is pure (no I/O): :class:`~blazeear_edge.cloud.client.DevCloudClient` sends it.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from ..errors import BlazeEarError
from . import DEFAULT_BOARD

#: ``CliParameters`` defaults of ST's client that are not ``None`` (declaration order).
ST_CLI_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("verbosity", 1),
    ("allocateInputs", True),
    ("allocateOutputs", True),
    ("target", None),
    ("series", "stm32f4"),
    ("splitWeights", False),
    ("noCFiles", False),
    ("stNeuralArt", None),
    ("useCloud", False),
    ("includeLibraryForIde", "gcc"),
)
#: The Neural-ART options of ST's N6 request (``AtonParameters(enable_epoch_controller=True)``).
N6_ATONN_OPTIONS = {"enable-epoch-controller": True}
#: Body shapes of the benchmark start.
FLAT, LEGACY = "flat", "legacy-args"
#: The path of the benchmark start in the benchmark service's OpenAPI document.
OPENAPI_START_PATH = "/benchmark/{queue}"


def is_n6(board: str) -> bool:
    return "STM32N6" in board.upper()


def cli_parameters(board: str) -> dict:
    """The ``CliParameters`` fields (except ``model``) for ``board``, ``None`` fields dropped."""
    params = dict(ST_CLI_DEFAULTS)
    if is_n6(board):
        params.update({"target": "stm32n6", "stNeuralArt": "default"})
    return {k: v for k, v in params.items() if v is not None}


def atonn_options(board: str) -> dict:
    return dict(N6_ATONN_OPTIONS) if is_n6(board) else {}


def benchmark_args(model_name: str, board: str = DEFAULT_BOARD, version: str | None = None) -> dict:
    """The benchmark arguments (``_build_arguments_dict`` of ST's ``benchmark_service.py``):
    ``version`` first (ST sets it inside its field loop), the fields, ``atonnOptions``, ``model``."""
    data: dict[str, Any] = {}
    if version:
        data["version"] = version
    data.update(cli_parameters(board))
    data["atonnOptions"] = atonn_options(board)
    data["model"] = model_name
    return data


def benchmark_body(model_name: str, board: str, version: str | None, shape: str = FLAT) -> dict:
    """The JSON body of ``POST api/benchmark/benchmark/{board}`` in ``shape``."""
    args = benchmark_args(model_name, board, version)
    if shape == LEGACY:
        args.pop("model")
        return {"args": json.dumps(args), "model": model_name}
    return args


def analyze_args(model_name: str, board: str, stats_type: str | None = None) -> dict:
    """The ``args`` form field of ``POST api/{version}/stm32ai/analyze`` (``_make_trigger_request``
    of ST's ``stm32ai_service.py``, given the name of an uploaded model as ST's model zoo does):
    ``model`` and the fields, ``atonnOptions``, ``statsType``."""
    data: dict[str, Any] = {"model": model_name, **cli_parameters(board)}
    data["atonnOptions"] = atonn_options(board)
    data["statsType"] = stats_type
    return data


def body_shape(openapi: Any) -> str | None:
    """The benchmark body shape the service's OpenAPI asks for, or None when the document does
    not describe the start call (then ST's client, and this one, send the flat body)."""
    try:
        post = openapi["paths"][OPENAPI_START_PATH]["post"]
        props = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    except (KeyError, TypeError):
        return None
    if not isinstance(props, Mapping):
        return None
    return LEGACY if set(props) == {"model", "args"} else FLAT


def resolve_version(versions: Sequence[Any], requested: str | None, platform: str = "stm32",
                    source: str = "assets/versions.json") -> str:
    """The Developer Cloud version to use: ``requested`` (matched against each entry's
    ``version`` or its ``platform[<platform>]`` version, as ST's ``CloudBackend`` does), else the
    entry marked ``isLatest``.  An unknown ``requested`` is an error (ST's client silently falls
    back to the latest; a benchmark on another version than the one asked is worse)."""
    entries = [v for v in versions if isinstance(v, Mapping) and v.get("version")]
    if requested:
        for entry in entries:
            plat = entry.get("platform") if isinstance(entry.get("platform"), Mapping) else {}
            if requested in (str(entry["version"]), str(plat.get(platform, entry["version"]))):
                return str(entry["version"])
        if not entries:
            return requested  # the service lists nothing: trust the user
        listed = ", ".join(str(e["version"]) for e in entries)
        raise BlazeEarError(f"--core-version {requested}: not offered by the Developer Cloud "
                            f"({source} lists {listed})")
    for entry in entries:
        if entry.get("isLatest") is True:
            return str(entry["version"])
    if entries:
        return str(entries[-1]["version"])
    raise BlazeEarError(f"{source} lists no ST Edge AI Core version; pass --core-version")
