"""chaos.proxy's modules import each other in one direction only, and never
upward into chaos.cli (imports under TYPE_CHECKING count too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "chaos" / "proxy"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        edges[name] = {m for m in _imports(path) if m in modules and m != name}
    return edges


def test_no_import_cycle_inside_chaos_proxy():
    edges = graph()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle.extend(trail[trail.index(nxt):] + [node, nxt] if nxt in trail else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, trail + [node]):
                return True
        state[node] = 2
        return False

    for node in sorted(edges):
        if state.get(node) is None and visit(node, []):
            break
    assert not cycle, " -> ".join(cycle)
    assert "chaos.proxy.toxics.base" in edges  # the graph was really read


def test_chaos_proxy_never_imports_chaos_cli():
    upward = {p.name: sorted(m for m in _imports(p) if m == "chaos.cli" or m.startswith("chaos.cli."))
              for p in PACKAGE.rglob("*.py")}
    assert not {k: v for k, v in upward.items() if v}


def test_toxics_depend_on_their_contract_only():
    for path in (PACKAGE / "toxics").glob("*.py"):
        inside = {m for m in _imports(path) if m.startswith("chaos.proxy")}
        allowed = {"chaos.proxy.toxics.base", "chaos.proxy.gojson"}
        assert {m.rsplit(".", 1)[0] if m not in allowed else m for m in inside} <= allowed | {"chaos.proxy.toxics"}, path
