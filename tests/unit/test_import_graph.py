"""No import cycle in chaos/: every module's imports (under TYPE_CHECKING and inside functions too) point one way.

The graph is read from the source (tests/util.py, ast): a cycle hidden behind a lazy import is still a cycle
of the design, so it counts.
"""

from __future__ import annotations

from pathlib import Path

from roomquake_testutil import find_cycle, import_graph

CHAOS = Path(__file__).resolve().parents[2] / "chaos"


def test_no_import_cycle_in_chaos() -> None:
    graph = import_graph(CHAOS)
    assert {"chaos.run.runner", "chaos.stack.contract", "chaos.faults.base"} <= set(graph)  # really read
    assert find_cycle(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_the_runner_and_the_stack_opener_do_not_import_each_other() -> None:
    graph = import_graph(CHAOS)
    assert "chaos.run.runner" not in graph["chaos.run.stacks"]
