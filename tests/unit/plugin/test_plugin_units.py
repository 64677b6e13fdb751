"""Plugin pieces without a stack: which files are experiments, rooms, stack keys, the pool, faults, the console."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel

from chaos.authoring import pool as pool_mod
from chaos.authoring.faults import Faults, RollbackFailed
from chaos.authoring.pool import StackKey, StackPool
from chaos.authoring.rooms import in_room, room_of
from chaos.errors import UsageError
from chaos.experiment import load_experiment
from chaos.experiment.expect import Expectation
from chaos.gameday.console import Console
from chaos.pytest_plugin import looks_like_experiment

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))


def _fakes() -> Any:
    spec = importlib.util.spec_from_file_location("rq_run_fakes", ROOT / "tests" / "unit" / "run" / "fakes.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["rq_run_fakes"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


fakes = _fakes()


def test_only_experiment_files_look_like_experiments(tmp_path: Path) -> None:
    assert SHIPPED and all(looks_like_experiment(p) for p in SHIPPED)
    assert not looks_like_experiment(ROOT / "docker" / "stack.yaml")
    (tmp_path / "e.json").write_text(json.dumps({"title": "t", "method": []}))
    (tmp_path / "other.json").write_text(json.dumps({"title": "t"}))
    (tmp_path / "list.json").write_text("[1, 2]")
    assert looks_like_experiment(tmp_path / "e.json")
    assert not looks_like_experiment(tmp_path / "other.json") and not looks_like_experiment(tmp_path / "list.json")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_in_room_moves_every_room_reference_and_back(path: Path) -> None:
    exp = load_experiment(path)
    moved = in_room(exp, "launch-3")
    assert room_of(moved) == "launch-3"
    dumped = json.dumps(moved.model_dump(mode="json", by_alias=True))
    assert '"launch"' not in dumped
    assert in_room(moved, "launch").model_dump() == exp.model_dump()
    assert in_room(exp, "launch") is exp
    # and every expectation means what it meant: a dump of {one_of: ...}, {between: ...} or {rises_by: ...}
    # once read back as a word to equal ("one of [...]"), so a reused stack's run judged something else
    assert expectations(moved) == expectations(exp) and expectations(exp)


def expectations(node: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """Every expectation in a parsed experiment, as (op, values)."""
    if isinstance(node, Expectation):
        return [(node.op, node.values)]
    if isinstance(node, BaseModel):
        return [e for name in type(node).model_fields for e in expectations(getattr(node, name))]
    if isinstance(node, (list, tuple)):
        return [e for item in node for e in expectations(item)]
    if isinstance(node, dict):
        return [e for item in node.values() for e in expectations(item)]
    return []


def test_in_room_keeps_what_each_mapping_expectation_means(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("""
title: t
load: {room: launch, listeners: 10}
steady_state:
  - {probe: room.state, expect: {one_of: [live, relaunching]}}
  - {probe: crowd.connected_ratio, expect: {between: [90%, 1.0]}}
method:
  - {id: kill-edge, at: 1s, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {probe: room.relaunches, expect: {rises_by: 1}, within: 10s, after: kill-edge}
""")
    exp = load_experiment(path)
    moved = in_room(exp, "launch-2")
    assert expectations(moved) == [("one_of", ("live", "relaunching")), ("between", (0.9, 1.0)), ("rises_by", (1.0,))]
    assert [str(c.expect) for c in moved.steady_state] == ["one of ['live', 'relaunching']", "between 90% and 1.0"]


def test_stack_key_ignores_order_and_value_types() -> None:
    a = StackKey.of("docker/stack.yaml", "local", {"edge": 3, "supervisor": 4}, "ci", {"edge": {"CAP": 80}})
    b = StackKey.of(ROOT / "docker" / "stack.yaml" if Path.cwd() == ROOT else "docker/stack.yaml", "local",
                    {"supervisor": 4, "edge": 3}, "ci", {"edge": {"CAP": "80"}})
    assert a == b
    assert a != StackKey.of("docker/stack.yaml", "local", {"edge": 2, "supervisor": 4}, "ci", {"edge": {"CAP": 80}})
    assert a != StackKey.of("docker/stack.yaml", "docker", {"edge": 3, "supervisor": 4}, "ci", {"edge": {"CAP": 80}})


def test_pool_reuses_on_same_key_and_replaces_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    resets: list[Any] = []
    monkeypatch.setattr("chaos.authoring.reset.reset", lambda stack, **settings: resets.append(stack) or ["reset"])
    started: list[Any] = []

    def start() -> Any:
        started.append(fakes.FakeStack(run_id=f"s{len(started)}"))
        return started[-1]

    key_a = StackKey.of("a.yaml", "local", {"edge": 3})
    key_b = StackKey.of("b.yaml", "local", {"edge": 3})
    with StackPool("local") as pool:
        first, reused, _ = pool.acquire(key_a, start)
        assert not reused and pool.uses == 1
        again, reused, done = pool.acquire(key_a, start)
        assert again is first and reused and done == ["reset"] and pool.uses == 2 and resets == [first]
        other, reused, _ = pool.acquire(key_b, start)
        assert other is not first and not reused and first.down_called and pool.cold_starts == 2
    assert other.down_called  # the pool takes down what it holds on exit
    no_reuse = StackPool("local", reuse=False)
    no_reuse.acquire(key_a, start)
    no_reuse.acquire(key_a, start)
    assert no_reuse.cold_starts == 2
    no_reuse.close()


def test_pool_replaces_a_stack_that_cannot_be_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(stack: Any, **settings: Any) -> list[str]:
        raise RuntimeError("proxy API unreachable")

    monkeypatch.setattr("chaos.authoring.reset.reset", broken)
    key = StackKey.of("a.yaml", "local")
    with StackPool("local") as pool:
        first, _, _ = pool.acquire(key, fakes.FakeStack)
        second, reused, done = pool.acquire(key, fakes.FakeStack)
        assert second is not first and not reused and first.down_called
        assert "reset failed (proxy API unreachable)" in done[0]


def test_faults_roll_back_on_exit_on_error_and_after_a_half_done_injection() -> None:
    stack = fakes.FakeStack()
    stack.load("start")
    faults = Faults(stack, proxy=fakes.FakeProxy())
    with faults.kill(hosting="launch") as hit:
        assert hit.names == ["edge-1"] and stack.instances("edge")[0].state == "exited"
    assert ("start", "edge-1") in stack.calls and hit.rolled_back
    with pytest.raises(ZeroDivisionError):
        with faults.pause(service="supervisor", count=2):
            1 / 0
    assert sum(1 for op, _ in stack.calls if op == "resume") == 2
    proxy = fakes.FakeProxy()
    proxy.fail_on = {"crowd->edge-2"}  # the second of three proxies refuses
    faults = Faults(stack, proxy=proxy)
    with pytest.raises(RuntimeError, match="refused"):
        with faults.latency("crowd->edge", latency="300ms", direction="both"):
            pass
    assert ("remove_toxic", "crowd->edge-1", "rq.authored.latency-1.downstream") in proxy.calls
    assert proxy.active_toxics() == 0 and not faults.active
    with faults.down("crowd->edge"):
        assert proxy.disabled == {"crowd->edge-1", "crowd->edge-2", "crowd->edge-3"}
    assert proxy.disabled == set()


def test_faults_report_failed_rollbacks_and_bad_specs() -> None:
    stack = fakes.FakeStack()
    stack.fail_ops = {("resume", "edge-2")}
    faults = Faults(stack, proxy=fakes.FakeProxy())
    with pytest.raises(RollbackFailed, match="edge-2: resume edge-2 failed"):
        with faults.pause(service="edge"):
            pass
    assert ("resume", "edge-1") in stack.calls and ("resume", "edge-3") in stack.calls  # the others still resumed
    with pytest.raises(UsageError, match="latency: Field required"):
        Faults.build({"fault": "latency", "link": "edge->state"})
    with pytest.raises(UsageError, match="name a target"):
        faults.kill()


class _Operator:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def advance(self) -> None:
        self.calls.append(("advance", ""))

    def note(self, text: str) -> None:
        self.calls.append(("note", text))

    def halt(self, by: str = "key") -> None:
        self.calls.append(("halt", by))


def test_console_lines_and_keys() -> None:
    op = _Operator()
    console = Console(op, SimpleNamespace(isatty=lambda: False))  # type: ignore[arg-type]
    for line in ["\n", "  looks fine \n", "h\n", "HALT\n"]:
        console.handle_line(line)
    assert op.calls == [("advance", ""), ("note", "looks fine"), ("halt", "key"), ("halt", "key")]
    op.calls.clear()
    for key in "\rnhi there\x7f\x7fre\r" + "x\x1b" + "h":
        console.handle_key(key)
    assert op.calls == [("advance", ""), ("note", "hi there"), ("halt", "key")]
