"""Read ST's own outputs into a few normalized device numbers.

ST Edge AI Core and the ST Edge AI Developer Cloud write what the board (or the compiler) did in
three shapes; :func:`read_st_report` reads any of them and returns the same dictionary:

* ``network_c_info.json`` (``stedgeai generate``): ``graphs[0].exec_time{cycles,duration_ms}``,
  ``memory_footprint{weights,activations,io,...}``, ``memory_pools[]{name,address,size_bytes,
  used_size_bytes,rights,subpools}`` and ``environment.tools[].version``;
* ``network_generate_report.txt`` / ``network_analyze_report.txt``: the tool banner
  (``ST Edge AI Core v3.0.0-...``), the "Memory usage information" table (one line per memory
  pool with its address range and used size) and the epoch summary, in the 3.x form
  (``Total number of epochs  56`` / ``>> pure software (SW) epochs  1`` / ``>> hybrid epochs ...`` /
  ``>> pure hardware (HW or EC) epochs  55`` and a ``| epoch_56 | SW | Softmax |`` table) or the
  older form (``Total number of epochs: N of which K implemented in software`` and lines such as
  ``epoch 38 -SW- ( DepthToSpace )``);
* a Developer Cloud benchmark (or analyze) result JSON, as ``blazeear-edge cloud benchmark`` saves
  it: ``{"state": "done", "benchmark": {"info": <c_info>, "graph": ..., "report": ...},
  "memoryMapping": {...}}`` or the older ``{"report": ..., "graph": {...}}`` layout.

Every field is ``None`` when the file does not say it: nothing is estimated or invented here.
Memory pools are internal when their address is below ``0x60000000`` (the STM32N6 AXI SRAMs sit at
``0x34xxxxxx``; the external octo-SPI flash and hyperRAM are memory-mapped at ``0x70000000`` and
``0x90000000``); an external pool is flash when it is read-only (``"rights": "ACC_READ"``) or, in the
text report which has no access rights, when its name contains "flash".  Sizes in the text report
are printed in kB (1024 bytes) with three decimals, so bytes read from it are exact to about one
byte.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .errors import BlazeEarError

#: The normalized fields, in the order ``bench`` shows them.
FIELDS = (
    "inference_ms",          # device inference time (ms), measured on the board
    "internal_ram_bytes",    # used bytes in internal RAM pools (address < 0x60000000)
    "external_ram_bytes",    # used bytes in external RAM pools (hyperRAM / PSRAM)
    "weights_bytes",         # weights as placed by the compiler
    "external_flash_bytes",  # used bytes in external flash pools (octo-SPI NOR)
    "epochs_total",
    "epochs_sw",             # pure software epochs (Cortex-M55)
    "epochs_hw",             # pure hardware epochs (NPU, incl. epoch-controller blobs)
    "epochs_hybrid",         # CPU-launched hardware work (e.g. DMA transposes)
    "tool_version",          # ST Edge AI Core version, e.g. "3.0.0"
)

#: Addresses at or above this are outside the STM32N6's internal memories.
EXTERNAL_ADDRESS = 0x60000000

_UNITS = {"B": 1, "KB": 1024, "KIB": 1024, "MB": 1024 ** 2, "MIB": 1024 ** 2, "GB": 1024 ** 3}


def empty_report() -> dict:
    """A report with every normalized field unknown."""
    return {name: None for name in FIELDS}


def read_st_report(path: str | Path) -> dict:
    """Parse one of ST's output files into the normalized fields of :data:`FIELDS`.

    Besides those fields the dictionary carries ``source`` (the path), ``kind`` (``"c_info"``,
    ``"report"`` or ``"cloud"``), ``sw_ops`` (operator names of the software epochs, when listed,
    else ``None``) and, for Developer Cloud results, ``board`` and ``requested_version`` (the
    ST Edge AI Core version ``blazeear-edge cloud`` asked for, also used as ``tool_version`` when
    the result does not state one).
    """
    path = Path(path)
    if not path.is_file():
        raise BlazeEarError(f"{path}: no such ST report file")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise BlazeEarError(f"{path}: cannot read ({exc.strerror or exc})") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BlazeEarError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        out = parse_st_json(doc, source=path)
    else:
        out = parse_report_text(text)
        if out["tool_version"] is None and out["epochs_total"] is None and \
                out["internal_ram_bytes"] is None and out["weights_bytes"] is None:
            raise BlazeEarError(f"{path}: not an ST Edge AI report (no tool banner, memory table "
                                "or epoch summary found)")
    out["source"] = str(path)
    return out


# --------------------------------------------------------------------------------------------
# JSON: c_info and Developer Cloud results


def parse_st_json(doc: Any, source: str | Path = "<json>") -> dict:
    """Normalize a parsed ``network_c_info.json`` or Developer Cloud result."""
    if not isinstance(doc, dict):
        raise BlazeEarError(f"{source}: expected a JSON object from ST Edge AI")
    if "graphs" in doc or "memory_pools" in doc or "memory_footprint" in doc:
        out = parse_c_info(doc)
        out["kind"] = "c_info"
        return out
    if any(k in doc for k in ("benchmark", "state", "graph", "info", "report", "memoryMapping")):
        return parse_cloud_result(doc, source)
    raise BlazeEarError(f"{source}: JSON is neither a network_c_info.json nor a Developer Cloud "
                        "result (no 'graphs', 'memory_pools', 'benchmark' or 'graph' key)")


def parse_c_info(cinfo: dict) -> dict:
    """Normalize a ``network_c_info.json`` document."""
    out = empty_report()
    out["kind"] = "c_info"
    out["sw_ops"] = None
    graphs = cinfo.get("graphs") or []
    graph0 = graphs[0] if graphs and isinstance(graphs[0], dict) else {}
    out["inference_ms"] = _duration_ms(graph0.get("exec_time"))
    footprint = cinfo.get("memory_footprint") or {}
    out["weights_bytes"] = _int_or_none(footprint.get("weights"))
    pools = cinfo.get("memory_pools")
    if isinstance(pools, list):
        out.update(_pool_totals(pools))
    out["tool_version"] = _tool_version_from_environment(cinfo.get("environment"))
    return out


def parse_cloud_result(doc: dict, source: str | Path = "<json>") -> dict:
    """Normalize a Developer Cloud benchmark or analyze result (final state JSON)."""
    state = str(doc.get("state", "")).lower()
    if state == "error":
        raise BlazeEarError(f"{source}: this Developer Cloud run ended in error: "
                            f"{doc.get('message') or 'no message'}")
    body = doc.get("benchmark") if isinstance(doc.get("benchmark"), dict) else doc
    if isinstance(body.get("result"), dict):  # analyze runs nest their result
        body = body["result"]
    out = empty_report()
    info = body.get("info")
    graph = body.get("graph") if isinstance(body.get("graph"), dict) else {}
    report = body.get("report")
    if isinstance(info, dict):
        out.update(parse_c_info(info))
    if out["inference_ms"] is None:
        out["inference_ms"] = _duration_ms(graph.get("exec_time"))
    if out["weights_bytes"] is None:
        out["weights_bytes"] = _int_or_none((graph.get("memory_footprint") or {}).get("weights"))
    if out["internal_ram_bytes"] is None and isinstance(graph.get("memory_pools"), list):
        out.update({k: v for k, v in _pool_totals(graph["memory_pools"]).items() if v is not None})
    if isinstance(report, str):  # the text report, when the service returns it
        text = parse_report_text(report)
        for key, value in text.items():
            if out.get(key) is None:
                out[key] = value
    elif isinstance(report, dict) and out["tool_version"] is None:
        out["tool_version"] = _version_string(report.get("tools_version")) or \
            _version_string(report.get("cli_version_str")) or _version_string(report.get("cli_version"))
    mapping = doc.get("memoryMapping") if isinstance(doc.get("memoryMapping"), dict) else {}
    # The service states outright whether external memories are used; "not used" is 0 bytes.
    if out["external_ram_bytes"] is None and mapping.get("useExternalRam") is False:
        out["external_ram_bytes"] = 0
    if out["external_flash_bytes"] is None and mapping.get("useExternalFlash") is False:
        out["external_flash_bytes"] = 0
    # What ``blazeear-edge cloud`` asked for (``request``): the Developer Cloud version of ST Edge
    # AI Core.  It stands in for the tool version when the service's files do not state one.
    request = doc.get("request") if isinstance(doc.get("request"), dict) else {}
    out["requested_version"] = _version_string(request.get("version"))
    if out["tool_version"] is None:
        out["tool_version"] = out["requested_version"]
    out.setdefault("sw_ops", None)
    out["kind"] = "cloud"
    out["board"] = doc.get("board") or body.get("board") or request.get("board")
    return out


def _duration_ms(exec_time: Any) -> float | None:
    if not isinstance(exec_time, dict):
        return None
    value = exec_time.get("duration_ms")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None  # ST writes -1 / 0 when nothing was measured


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def _address(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        text = str(value).strip()
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _pool_totals(pools: list) -> dict:
    """Sum used bytes per memory class; virtual aggregates are not counted twice."""
    pools = [p for p in pools if isinstance(p, dict)]
    skip = set()
    for pool in pools:
        if pool.get("subpools"):
            if pool.get("buffers"):  # buffers live in the aggregate: count it, not its parts
                skip.update(pool["subpools"])
            else:                    # an empty aggregate view over pools listed on their own
                skip.add(pool.get("id"))
    totals = {"internal_ram_bytes": None, "external_ram_bytes": None, "external_flash_bytes": None}
    counted = False
    for pool in pools:
        if pool.get("id") is not None and pool.get("id") in skip:
            continue
        used = _int_or_none(pool.get("used_size_bytes", pool.get("used_size")))
        address = _address(pool.get("address"))
        if used is None or address is None:
            continue
        counted = True
        rights = str(pool.get("rights", "")).upper()
        name = str(pool.get("name", ""))
        if address < EXTERNAL_ADDRESS:
            key = "internal_ram_bytes"
        elif rights == "ACC_READ" or (not rights and "flash" in name.lower()):
            key = "external_flash_bytes"
        else:
            key = "external_ram_bytes"
        totals[key] = (totals[key] or 0) + used
    if counted:  # the pool list is complete: a class with no used pool really uses 0 bytes
        totals = {k: (v if v is not None else 0) for k, v in totals.items()}
    return totals


_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def _version_string(value: Any) -> str | None:
    if isinstance(value, dict):
        parts = [value.get(k) for k in ("major", "minor", "micro")]
        if all(p is not None for p in parts):
            return ".".join(str(p) for p in parts)
        return None
    if isinstance(value, (list, tuple)) and len(value) >= 3:
        return ".".join(str(p) for p in value[:3])
    if isinstance(value, str):
        match = _VERSION_RE.search(value)
        return ".".join(match.groups()) if match else None
    return None


def _tool_version_from_environment(env: Any) -> str | None:
    if not isinstance(env, dict):
        return None
    tools = env.get("tools") or []
    if not isinstance(tools, list):
        return None
    # Prefer the entry naming ST Edge AI Core; otherwise the first, as ST's own client does.
    ordered = sorted(tools, key=lambda t: 0 if isinstance(t, dict) and re.search(
        r"edge\s*ai|stedgeai|stm32cube", str(t.get("name", "")), re.I) else 1)
    for tool in ordered:
        if isinstance(tool, dict):
            version = _version_string(tool.get("version"))
            if version:
                return version
    return None


# --------------------------------------------------------------------------------------------
# Text reports


_BANNER_RE = re.compile(
    r"(?:ST\s*Edge\s*AI(?:\s+Core)?|stedgeai|STM32Cube\.AI|X-CUBE-AI)\s*(?:\(\w+\))?\s*v?(\d+\.\d+\.\d+)",
    re.I)
_TOOLS_VERSION_RE = re.compile(r"^\s*tools?[ _]version\s*:\s*(\d+\.\d+\.\d+)", re.I | re.M)
_POOL_LINE_RE = re.compile(
    r"^\s*([A-Za-z_][\w.]*)\s+\[0x([0-9A-Fa-f]+)\s*-\s*0x([0-9A-Fa-f]+)\]:\s*"
    r"([\d.,]+)\s*([KMG]?i?B)\s*/", re.I | re.M)
_TOTAL_WEIGHTS_RE = re.compile(r"^Total:.*?weights:\s*([\d.,]+)\s*([KMG]?i?B)", re.I | re.M)
_EPOCHS_OLD_RE = re.compile(
    r"Total number of epochs\s*:\s*(\d+)\s+of which\s+(\d+)\s+implemented in software", re.I)
_EPOCHS_TOTAL_RE = re.compile(r"Total number of epochs\s*:?\s*(\d+)", re.I)
_EPOCHS_SW_RE = re.compile(r">>\s*pure software \(SW\) epochs\s+(\d+)", re.I)
_EPOCHS_HYBRID_RE = re.compile(r">>\s*hybrid epochs[^\n\d]*?(\d+)", re.I)
_EPOCHS_HW_RE = re.compile(r">>\s*pure hardware \([^)]*\) epochs\s+(\d+)", re.I)
# "epoch 38 -SW- ( DepthToSpace )", "epoch 3  HW", "| epoch_56 |  SW  | Softmax |"
_EPOCH_LINE_RE = re.compile(r"^\s*epoch[ _]?(\d+)\s+(-?(?:HW|SW|EC|HYBRID)(?:\s*[/+]\s*(?:HW|SW))?-?)"
                            r"\s*(?:\(\s*([^)]*?)\s*\))?\s*$", re.I | re.M)
_EPOCH_ROW_RE = re.compile(r"^\|\s*epoch[ _]?(\d+)\s*\|\s*([A-Za-z/+ -]+?)\s*\|\s*([^|]*?)\s*\|\s*$",
                           re.I | re.M)


def _bytes(number: str, unit: str) -> int:
    return int(round(float(number.replace(",", "")) * _UNITS[unit.upper()]))


def _epoch_kind(tag: str) -> str:
    tag = tag.upper().strip("- ")
    has_sw, has_hw = "SW" in tag, ("HW" in tag or "EC" in tag)
    if "HYBRID" in tag or (has_sw and has_hw):
        return "hybrid"
    return "sw" if has_sw else "hw"


def parse_report_text(text: str) -> dict:
    """Normalize the text of ``network_generate_report.txt`` / ``network_analyze_report.txt``."""
    out = empty_report()
    out["kind"] = "report"
    out["sw_ops"] = None

    match = _BANNER_RE.search(text) or _TOOLS_VERSION_RE.search(text)
    if match:
        out["tool_version"] = match.group(1)

    pools = list(_POOL_LINE_RE.finditer(text))
    if pools:
        totals = {"internal_ram_bytes": 0, "external_ram_bytes": 0, "external_flash_bytes": 0}
        for m in pools:
            name, start, used = m.group(1), int(m.group(2), 16), _bytes(m.group(4), m.group(5))
            if start < EXTERNAL_ADDRESS:
                totals["internal_ram_bytes"] += used
            elif "flash" in name.lower():
                totals["external_flash_bytes"] += used
            else:
                totals["external_ram_bytes"] += used
        out.update(totals)
    match = _TOTAL_WEIGHTS_RE.search(text)
    if match:
        out["weights_bytes"] = _bytes(match.group(1), match.group(2))

    old = _EPOCHS_OLD_RE.search(text)
    if old:
        out["epochs_total"], out["epochs_sw"] = int(old.group(1)), int(old.group(2))
    else:
        match = _EPOCHS_TOTAL_RE.search(text)
        if match:
            out["epochs_total"] = int(match.group(1))
        for key, regex in (("epochs_sw", _EPOCHS_SW_RE), ("epochs_hybrid", _EPOCHS_HYBRID_RE),
                           ("epochs_hw", _EPOCHS_HW_RE)):
            match = regex.search(text)
            if match:
                out[key] = int(match.group(1))

    listing: dict[int, tuple[str, str]] = {}
    for m in _EPOCH_LINE_RE.finditer(text):
        listing[int(m.group(1))] = (_epoch_kind(m.group(2)), (m.group(3) or "").strip())
    for m in _EPOCH_ROW_RE.finditer(text):
        if m.group(2).strip().lower() == "type":
            continue
        listing[int(m.group(1))] = (_epoch_kind(m.group(2)), m.group(3).strip())
    if listing:
        kinds = [kind for kind, _ in listing.values()]
        out["sw_ops"] = [op or "?" for _, (kind, op) in sorted(listing.items()) if kind == "sw"]
        complete = out["epochs_total"] is None or len(listing) == out["epochs_total"]
        if complete:
            if out["epochs_total"] is None:
                out["epochs_total"] = len(listing)
            for key, kind in (("epochs_sw", "sw"), ("epochs_hw", "hw"), ("epochs_hybrid", "hybrid")):
                if out[key] is None:
                    out[key] = kinds.count(kind)
    return out
