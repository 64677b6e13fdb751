"""Helpers shared by the tests: loaded by tests/conftest.py as the module ``roomquake_testutil``.

- ``until(check, timeout, what)``: poll until ``check()`` returns something truthy;
- ``free_ports(n)``: loopback ports free right now (chaos.stack.ports', the one implementation, leased like a stack's);
- ``import_graph(package_dir)`` and ``find_cycle(graph)``: the modules of a package and what each imports;
- ``run_cli(argv, capsys)``: roomquake's command line in this process: exit code, stdout, stderr.

/proc/<pid>/stat fields: ``chaos.labels.proc_stat``.
"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from chaos.stack.ports import free_ports

__all__ = ["find_cycle", "free_ports", "import_graph", "left_networks", "run_cli", "until"]

T = TypeVar("T")


def until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05,
          ignore: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``check`` until it returns something truthy, and return that; an exception in ``ignore`` counts as
    not yet. AssertionError naming ``what`` and the last value once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except ignore as err:
            last = err
        else:
            if value:
                return value
            last = value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.1f}s: {what} (last: {last!r})")


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


def run_cli(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    """``roomquake ARGV`` in this process (``capsys``: pytest's fixture): its exit code, stdout and stderr."""
    from chaos.cli.main import main

    code = 0
    try:
        main(argv)
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def left_networks(client: Any, run_id: str) -> list[str]:
    """The names of a run's networks still on the engine, except one the engine holds stuck (moby#42119: the
    endpoint of a force-removed container kept for good, no container on the network, no call removes it), which
    the teardown reports and `roomquake clean` names; the same rule as chaos.engine.network_is_stuck."""
    import docker

    from chaos.engine import network_is_stuck
    from chaos.labels import RUN

    left = []
    for network in client.networks.list(filters={"label": f"{RUN}={run_id}"}):
        try:
            network.remove()  # a real leftover fails the test anyway; a stuck one refuses
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as err:
            if network_is_stuck(client, network.id, err):
                continue
        left.append(network.name)
    return left
