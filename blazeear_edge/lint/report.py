"""The lint result (:class:`LintReport`), its JSON form and its text table."""

from __future__ import annotations

from dataclasses import dataclass, field

from .footprint import RAM_POOL_BAND, RAM_POOL_FACTOR, footprint_dict, weights_band
from .mapping import HYBRID_WEIGHT, MACC_PER_COST_UNIT, SW_WEIGHT, Mapping
from .placement import alternatives
from .rules import RULES, Finding

#: keys of ``LintReport.to_dict()``, in order (documented in docs/lint.md)
JSON_KEYS = ("model", "format", "target", "findings", "summary", "mapping", "macc", "params",
             "weights_bytes", "activations_peak_bytes", "footprint", "inference_ms",
             "inference_ms_band", "latency")


@dataclass
class LintReport:
    model: str
    format: str  #: "onnx" | "tflite"
    target: str
    findings: list = field(default_factory=list)  #: list[Finding], errors first
    mapping: Mapping = field(default_factory=Mapping)
    macc: int = 0
    params: int = 0
    weights_bytes: int = 0
    activations_peak_bytes: int = 0
    #: predicted N6 time and memory placement (:mod:`.latency`); None when not computed
    latency: object = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def summary(self) -> dict:
        return {"errors": len(self.errors), "warnings": len(self.warnings)}

    @property
    def ok(self) -> bool:
        """No error rule fired."""
        return not self.errors

    def exit_code(self, strict: bool = False) -> int:
        """0 clean, 1 when an error fires (with ``strict``, also a warning)."""
        return 1 if self.errors or (strict and self.warnings) else 0

    def rules_fired(self) -> set:
        return {f.rule for f in self.findings}

    def to_dict(self) -> dict:
        return {"model": self.model, "format": self.format, "target": self.target,
                "findings": [f.to_dict() for f in self.findings],
                "summary": self.summary,
                "mapping": self.mapping.to_dict(),
                "macc": int(self.macc), "params": int(self.params),
                "weights_bytes": int(self.weights_bytes),
                "activations_peak_bytes": int(self.activations_peak_bytes),
                "footprint": footprint_dict(self.weights_bytes, self.activations_peak_bytes,
                                            self.st_version),
                **_latency_keys(self.latency)}

    @property
    def inference_ms(self) -> float | None:
        """Predicted STM32N6570-DK inference time (ms), None when not computed."""
        return None if self.latency is None else self.latency.inference_ms

    @property
    def st_version(self) -> str | None:
        """The ST Edge AI version of the compile estimated (None: not given)."""
        return getattr(getattr(self.mapping, "options", None), "version", None)

    def format_text(self, show_ops: bool = False) -> str:
        return format_text(self, show_ops)


def _latency_keys(lat) -> dict:
    if lat is None:
        return {"inference_ms": None, "inference_ms_band": None, "latency": None}
    d = lat.to_dict()
    return {"inference_ms": d["inference_ms"], "inference_ms_band": d["inference_ms_band"],
            "latency": d}


# ---------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------
def _clip(s: str, n: int) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 3] + "..."


def _table(headers, rows) -> list[str]:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for r in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return lines


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def format_text(rep: LintReport, show_ops: bool = False) -> str:
    s = rep.summary
    info = len(rep.findings) - s["errors"] - s["warnings"]
    verdict = ("FAILS: error rules fired, stedgeai will not compile it as is" if s["errors"]
               else "compiles for the N6 as far as the rules know")
    lines = [f"{rep.model} ({rep.format}, target {rep.target}): {verdict}",
             f"findings: {s['errors']} error(s), {s['warnings']} warning(s), {info} info", ""]
    if rep.findings:
        rows = [(f.severity, f.rule, _clip(f.node or "-", 40), _clip(f.op or "-", 24),
                 f.detail or "-") for f in rep.findings]
        lines.extend(_table(("SEVERITY", "RULE", "NODE", "OP", "DETAIL"), rows))
        lines.append("")
        lines.append("rules fired:")
        for rid in dict.fromkeys(f.rule for f in rep.findings):
            r = RULES[rid]
            lines.append(f"  {r.id} ({r.severity}): {r.message}")
            lines.append(f"      fix: {r.hint}")
            lines.append(f"      source: {r.source}")
        lines.append("")
    m = rep.mapping
    e = m.epochs
    mode = m.options.describe()
    if m.assume_int8:
        mode += "; float operators placed as if quantised"
    lines.append(f"mapping estimate (stedgeai: {mode}):")
    lines.append(f"  {m.total_epochs} epochs = {e['hw']} hw + {e['hybrid']} hybrid + {e['sw']} sw; "
                 f"cost {m.cost:.1f}")
    if not m.exact:
        r = m.epochs_range
        lines.append("  range (rules whose exact condition is unknown): "
                     + ", ".join(f"{k} {r[k][0]}..{r[k][1]}" for k in ("hw", "hybrid", "sw")))
    rows = []
    for op, unit, n, steps in m.by_op():
        rows.append((op, n, unit, " + ".join(steps) if steps else "(none: view / absorbed)"))
    lines.extend("  " + x for x in _table(("OP", "COUNT", "UNIT", "EPOCH STEPS EACH"), rows))
    lines.append("")
    macs = f"{rep.macc / 1e6:.2f} M" if rep.macc >= 100_000 else f"{rep.macc:,}"
    fp = footprint_dict(rep.weights_bytes, rep.activations_peak_bytes, rep.st_version)
    wlo, whi = fp["weights_st_image_band_bytes"]
    rlo, rhi = fp["ram_pools_band_bytes"]
    lines.append(f"footprint: {macs} MACs, {rep.params:,} params")
    ver = rep.st_version
    what = (f"ST Edge AI {ver} flash image" if ver and ver.startswith("2.")
            else "flash image payload")
    blo, bhi = weights_band(ver)
    lines.append(f"  weights ({what}): {rep.weights_bytes:,} B "
                 f"({_kib(rep.weights_bytes)}); ST's image {blo:g}-{bhi:g}x that: "
                 f"{wlo:,}..{whi:,} B")
    lines.append(f"  activations: at least {rep.activations_peak_bytes:,} B "
                 f"({_kib(rep.activations_peak_bytes)}, liveness peak); ST's RAM pools estimated "
                 f"{fp['ram_pools_estimate_bytes']:,} B ({RAM_POOL_FACTOR:g}x), observed "
                 f"{RAM_POOL_BAND[0]:g}-{RAM_POOL_BAND[1]:g}x: {rlo:,}..{rhi:,} B")
    lines.append(f"cost = hw + {HYBRID_WEIGHT:g} x hybrid + {SW_WEIGHT:g} x sw + MACs / "
                 f"{MACC_PER_COST_UNIT / 1e6:g} M (hardware-epoch units, ranks alternatives)")
    if rep.latency is not None:
        from .latency import format_lines

        lines.append("")
        lines.extend(format_lines(rep.latency))
    if show_ops:
        lines.append("")
        lines.extend(_table(("#", "NODE", "OP", "UNIT", "EPOCH STEPS", "RULE"),
                            [(i, _clip(p.node, 48), _clip(p.op, 32), p.unit,
                              "+".join(p.epochs) or "-",
                              p.rule + (" (or " + " or ".join("+".join(a) or "-" for a in alternatives(p))
                                        + ")" if p.alt is not None else ""))
                             for i, p in enumerate(m.ops)]))
    return "\n".join(lines)
