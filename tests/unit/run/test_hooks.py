"""The runner's public extension hooks (timeline_offset, before_fault, abort, check_stop) on fakes."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from chaos.experiment.model import FaultBase
from chaos.experiment.validate import validate_text
from chaos.gameday.runner import GameDayRunner
from chaos.run import RunOptions, Runner, Verdict
from chaos.run.journal import read

from .fakes import FakeOpener, FakeProxy, FakeStack

EXPERIMENT = """
title: t
seed: 3
settle: 300ms
sample_every: 50ms
load: {room: launch, listeners: 10}
steady_state:
  - {id: live, probe: room.state, expect: live}
method:
  - {id: slow, at: 100ms, fault: latency, link: edge->state, latency: 100ms, for: 300ms}
  - {id: second, at: 200ms, fault: latency, link: crowd->edge, latency: 50ms, for: 100ms}
"""


class Shifting(Runner):
    """Shifts the timeline by a fixed amount at each fault, like an operator who takes `delay` to confirm."""

    def __init__(self, *args: Any, delay: float = 0.0, stop_at: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delay, self.stop_at, self.shift, self.seen = delay, stop_at, 0.0, []

    def timeline_offset(self) -> float:
        return self.shift

    def before_fault(self, step_id: str, step: FaultBase) -> None:
        self.seen.append((step_id, step.fault))
        if step_id == self.stop_at:
            self.abort("stopped by a hook", condition="hook")
            self.check_stop()
        self.shift += self.delay


def make(tmp_path: Path, **kwargs: Any) -> tuple[Shifting, FakeProxy]:
    exp, problems = validate_text(EXPERIMENT, "x.yaml")
    assert not problems
    proxy = FakeProxy()
    runner = Shifting(exp, "x.yaml", RunOptions(journal=tmp_path / "j.json", progress=False,
                                                 open_stack=FakeOpener(FakeStack()), make_proxy=lambda url: proxy), **kwargs)
    return runner, proxy


def test_timeline_offset_moves_every_later_step(tmp_path: Path) -> None:
    runner, proxy = make(tmp_path, delay=0.4)
    result = runner.run()
    assert result.verdict is Verdict.PASSED, result.reason
    assert runner.seen == [("slow", "latency"), ("second", "latency")]
    events = read(result.journal)["events"]
    method_t0 = next(e["t"] for e in events if e["kind"] == "phase_started" and e["phase"] == "method")
    injected = {e["step"]: e for e in events if e["kind"] == "fault_injected"}
    # planned times carry the shift known at injection: 0.4 s for the first, 0.8 s for the second
    assert abs(injected["slow"]["planned_at"] - (method_t0 + 0.1 + 0.4)) < 0.05
    assert abs(injected["second"]["planned_at"] - (method_t0 + 0.2 + 0.8)) < 0.05
    assert injected["second"]["t"] >= method_t0 + 0.2 + 0.4  # waited for its time plus the shift known then
    # 'slow' was due to end at 0.4 s on the method clock: the later shift kept it on for longer
    rolled = {e["step"]: e for e in events if e["kind"] == "fault_rolled_back"}
    assert rolled["slow"]["reason"] == "for elapsed" and rolled["slow"]["active_s"] >= 0.6
    assert proxy.active_toxics() == 0


def test_abort_from_a_hook_rolls_back_and_aborts(tmp_path: Path) -> None:
    runner, proxy = make(tmp_path, stop_at="second")
    result = runner.run()
    assert result.verdict is Verdict.ABORTED and result.reason == "stopped by a hook"
    events = read(result.journal)["events"]
    aborts = [e for e in events if e["kind"] == "abort_triggered"]
    assert len(aborts) == 1 and aborts[0]["condition"] == "hook"
    assert [e["step"] for e in events if e["kind"] == "fault_injected"] == ["slow"]
    assert [(e["step"], e["ok"]) for e in events if e["kind"] == "fault_rolled_back"] == [("slow", True)]
    assert proxy.active_toxics() == 0


def test_abort_keeps_the_first_reason(tmp_path: Path) -> None:
    runner, _ = make(tmp_path)
    runner.abort("first")
    runner.abort("second")
    assert runner.abort_reason == "first" and runner.stop.is_set()


def test_game_day_runner_uses_only_public_hooks() -> None:
    # nothing it defines overrides a private Runner method, and its code calls none
    private = {name for name in vars(Runner) if name.startswith("_") and not name.startswith("__")}
    assert not private & set(vars(GameDayRunner))
    source = inspect.getsource(GameDayRunner)
    assert not [name for name in private if f".{name}(" in source]
    assert {"timeline_offset", "before_fault"} <= set(vars(GameDayRunner))
