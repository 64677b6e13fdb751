"""The services depend on their libraries only: never on the toolkit (dependencies point one way)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "docker" / "audioroom"
ALLOWED = {"aiohttp", "prometheus_client", "redis", "websockets", "uvloop"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_services_import_only_the_standard_library_and_their_declared_libraries():
    import sys

    sources = sorted(PACKAGE.glob("*.py"))
    assert len(sources) >= 10
    for source in sources:
        third_party = {r for r in imported_roots(source) if r not in sys.stdlib_module_names and r != "__future__"}
        assert third_party <= ALLOWED, f"{source.name} imports {sorted(third_party - ALLOWED)}"
        assert "chaos" not in imported_roots(source)
