"""Names specific to a stack come from its stack file: the run's scope (its load's room), the automation group."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chaos.experiment.stackcheck import check_against_stack
from chaos.experiment.validate import validate_text
from chaos.run import RunOptions, Runner, Verdict
from chaos.run.journal import read
from chaos.stack import load_stack

from .fakes import FakeOpener, FakeProxy, FakeStack

ROOT = Path(__file__).resolve().parents[3]


def stack_with_load(start_room: str) -> FakeStack:
    """A fake whose stack file declares load actions with their defaults, as docker/stack.yaml does."""
    stack = FakeStack()
    stack.spec.load = {"start": SimpleNamespace(params={"room": start_room, "listeners": 100, "ramp_s": 2}),
                       "surge": SimpleNamespace(params={"room": start_room, "listeners": 500, "over_s": 2})}
    return stack


def run(body: str, tmp_path: Path, stack: FakeStack) -> tuple[Any, dict[str, Any]]:
    experiment, problems = validate_text("title: t\nseed: 1\nsettle: 2s\nsample_every: 50ms\n" + body, "x.yaml")
    assert experiment is not None, [str(p) for p in problems]
    result = Runner(experiment, "x.yaml", RunOptions(journal=tmp_path / "j.json", progress=False,
                                                     open_stack=FakeOpener(stack), make_proxy=FakeProxy)).run()
    return result, read(result.journal)


def test_a_load_without_a_room_uses_the_stack_files_and_probes_read_it(tmp_path: Path) -> None:
    stack = stack_with_load("hall")
    body = "load: {listeners: 10}\nsteady_state:\n  - {probe: room.state, expect: live}\nmethod:\n  - {fault: surge, listeners: 5}\n"
    result, journal = run(body, tmp_path, stack)
    assert result.verdict is Verdict.PASSED, result.reason
    assert stack.loads[0] == ("start", {"listeners": 10, "ramp_s": 0.0})  # the stack fills in its own room
    assert "room.state{room=hall}" in journal["series"]  # room-scoped probes read the load's room
    assert stack.loads[1] == ("surge", {"listeners": 5, "over_s": 0.0, "room": "hall"})  # a surge goes where the load is


def test_the_experiments_room_wins_and_a_run_without_load_fills_nothing(tmp_path: Path) -> None:
    stack = stack_with_load("hall")
    body = "load: {room: stage, listeners: 10}\nsteady_state:\n  - {probe: room.state, expect: live}\n"
    _, journal = run(body, tmp_path / "a", stack)
    assert stack.loads[0][1]["room"] == "stage" and "room.state{room=stage}" in journal["series"]
    bare = stack_with_load("hall")
    bare.load("start")  # someone else's load: the fake's room exists
    _, journal = run("steady_state:\n  - {probe: room.state, expect: live}\nmethod:\n  - {fault: surge, listeners: 5}\n",
                     tmp_path / "b", bare)
    assert "room.state" in journal["series"]  # no load: the probe's own default
    assert bare.loads[-1] == ("surge", {"listeners": 5, "over_s": 0.0})  # the stack's surge default


def test_staff_reduction_without_a_group_acts_on_the_stack_files_automation(tmp_path: Path) -> None:
    stack = stack_with_load("hall")
    stack.load("start")
    result, journal = run("method:\n  - {fault: staff_reduction, mode: pause, count: 2}\n", tmp_path, stack)
    assert result.verdict is Verdict.PASSED, result.reason
    (injected,) = [e for e in journal["events"] if e["kind"] == "fault_injected"]
    assert len(injected["hit"]) == 2 and all(name.startswith("supervisor-") for name in injected["hit"])
    spec = load_stack(ROOT / "docker" / "stack.yaml").spec
    experiment, _ = validate_text("title: t\nmethod:\n  - {fault: staff_reduction}\n", "x.yaml")
    assert check_against_stack(experiment, spec) == []
    bare = spec.model_copy(update={"automation": None})
    assert [f"{p.field}: {p.message}" for p in check_against_stack(experiment, bare)] == [
        "method[0].fault: stack audio-room declares no automation: name the group, e.g. group: supervisor"]
