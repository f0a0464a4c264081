"""The package's import layering (read from the source with ``ast``, not by importing):

* the graph of module-level imports between the package's own modules is acyclic;
* export, parity and evaluate are siblings: none of them imports another, directly or not; only
  bench and the CLI sit above them; the producer of artifacts (export) reaches neither the
  checker (parity) nor the C harness;
* the verdict thresholds are defined once (in compare.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "blazeear_edge"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> list[str]:
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if node.level:
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("blazeear_edge"):
        return []
    out = [target]
    if node.module is None or node.level:  # "from . import harness" names sub-modules
        out += [f"{target}.{a.name}" for a in node.names]
    return out


def _graph(top_level_only: bool = True) -> dict[str, set[str]]:
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        tree = ast.parse(p.read_text())
        body = tree.body if top_level_only else list(ast.walk(tree))
        for node in body:
            if isinstance(node, ast.ImportFrom):
                for t in _resolve(m, p.name == "__init__.py", node):
                    while t and t not in mods:
                        t = t.rsplit(".", 1)[0] if "." in t else ""
                    if t and t != m:
                        graph[m].add(t)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("blazeear_edge") and a.name in mods:
                        graph[m].add(a.name)
    return graph


def _reach(graph, start) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for n in graph[todo.pop()]:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def test_module_level_imports_are_acyclic():
    g = _graph()
    state = {}

    def visit(n, stack):
        state[n] = 1
        for m in g[n]:
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [n, m]))
            if m not in state:
                visit(m, stack + [n])
        state[n] = 2

    for n in g:
        if n not in state:
            visit(n, [])


def test_export_parity_evaluate_are_siblings():
    g = _graph(top_level_only=False)  # function-level imports count too
    ex, par, ev = "blazeear_edge.export", "blazeear_edge.parity", "blazeear_edge.evaluate"
    for a in (ex, par, ev):
        r = _reach(g, a)
        for b in (ex, par, ev, "blazeear_edge.bench", "blazeear_edge.cli"):
            if b != a:
                assert b not in r, f"{a} reaches {b}"
    assert "blazeear_edge.harness" not in _reach(g, ex)


def test_verdict_thresholds_are_defined_once():
    """No module but compare.py defines a tolerance constant or an SQNR threshold literal."""
    pat = re.compile(r"^\s*(FP32_TOLERANCE|SQNR_WARN_DB|FP32_REF_MAGNITUDE|min_sqnr_db|"
                     r"warn_sqnr_db)\s*[:=]", re.M)
    for p in PKG.rglob("*.py"):
        if p.name == "compare.py":
            continue
        assert not pat.search(p.read_text()), f"{p} defines a verdict threshold"
    assert pat.search((PKG / "compare.py").read_text())
