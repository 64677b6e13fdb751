"""Helpers shared by the tests (and bench/): loaded by tests/conftest.py as the module ``roomquake_testutil``.

- ``free_ports(n)``: loopback ports free right now (the OS picks them);
- ``wait_for(check, timeout, what)``: poll until ``check()`` returns something truthy;
- ``proc_stat(pid)``: the fields of /proc/<pid>/stat after the command name;
- ``import_graph(package_dir)`` and ``find_cycle(graph)``: the modules of a package and what each imports.
"""

from __future__ import annotations

import ast
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports nobody listens on now (all bound at once, so no port is handed out twice)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Call ``check`` until it returns something truthy (returned); AssertionError naming ``what`` at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def proc_stat(pid: int) -> list[str]:
    """Fields 3.. of /proc/<pid>/stat (state first); the command name may hold spaces and parentheses."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


# --- import graph ------------------------------------------------------------------------------------------
# Hand-written on the standard library's ast: it counts every import statement (those under TYPE_CHECKING
# and inside functions too, which an import-time tracer would miss) and resolves `from pkg import name` to
# the submodule when there is one, in some 40 lines; no library to pin for that.


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path, modules: Mapping[str, Path]) -> set[str]:
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(kept + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)  # a submodule, else a name of the module
    return {m for m in found if m in modules and m != name}


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (``chaos.stack.spec`` -> {``chaos.probes``, ...})."""
    top = package_dir
    while (top.parent / "__init__.py").exists():  # chaos/proxy -> chaos: names are full (chaos.proxy.link)
        top = top.parent
    root = top.parent
    modules = {_module_name(p, root): p for p in package_dir.rglob("*.py")}
    return {name: _imports(path, root, modules) for name, path in modules.items()}


def find_cycle(graph: Mapping[str, set[str]]) -> list[str]:
    """One import cycle (``[a, b, a]``), or [] when the graph has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    trail: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        trail.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        trail.pop()
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []
