"""GameDayRunner on the runner's fakes: waits for the operator, pauses the method's clock, halts at once."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chaos.experiment import validate_text
from chaos.gameday.runner import GameDayRunner
from chaos.run import RunOptions, Verdict
from chaos.run.journal import read

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("rq_run_fakes", ROOT / "tests" / "unit" / "run" / "fakes.py")
fakes = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["rq_run_fakes"] = fakes
spec.loader.exec_module(fakes)  # type: ignore[union-attr]

EXPERIMENT = """
title: t
seed: 1
settle: 1s
sample_every: 50ms
load: {room: launch, listeners: 10}
steady_state:
  - {id: live, probe: room.state, expect: live}
method:
  - {id: slow, at: 100ms, fault: latency, link: edge->state, latency: 100ms, for: 400ms}
  - {id: pause-sup, at: 200ms, fault: pause, target: {service: supervisor, replica: 1}}
"""


def runner(tmp_path: Path, auto: bool = False) -> tuple[GameDayRunner, Any]:
    exp, problems = validate_text(EXPERIMENT, "x.yaml")
    assert not problems
    proxy = fakes.FakeProxy()
    run = GameDayRunner(exp, "x.yaml", RunOptions(journal=tmp_path / "j.json", progress=False,
                                                    open_stack=fakes.FakeOpener(fakes.FakeStack()),
                                                    make_proxy=lambda url: proxy), auto=auto)
    return run, proxy


def operator(run: GameDayRunner, actions: list[tuple[str, float]]) -> threading.Thread:
    """Confirm each waiting step after a delay (or halt), like a person at the keyboard."""
    def act() -> None:
        for action, delay in actions:
            while run.waiting_for is None and not run.stop.is_set():
                time.sleep(0.01)
            time.sleep(delay)
            run.halt("key") if action == "halt" else run.advance()
            while run.waiting_for is not None and not run.stop.is_set():
                time.sleep(0.01)
    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_waits_for_each_step_and_keeps_fault_durations(tmp_path: Path) -> None:
    run, proxy = runner(tmp_path)
    operator(run, [("go", 0.6), ("go", 0.3)])
    result = run.run()
    assert result.verdict is Verdict.PASSED, result.reason
    events = read(result.journal)["events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("step_waiting") == 2 and kinds.count("step_confirmed") == 2
    confirmed = [e for e in events if e["kind"] == "step_confirmed"]
    assert confirmed[0]["waited_s"] >= 0.5 and confirmed[1]["waited_s"] >= 0.25
    injected = {e["step"]: e for e in events if e["kind"] == "fault_injected"}
    rolled = {e["step"]: e for e in events if e["kind"] == "fault_rolled_back"}
    # the clock paused while waiting: 'slow' still lasted its 400ms plus the second wait, not 400ms minus the first
    assert rolled["slow"]["reason"] == "for elapsed" and rolled["slow"]["active_s"] >= 0.4
    assert injected["slow"]["t"] >= 0.6 and proxy.active_toxics() == 0


def test_halt_while_waiting_rolls_back_what_is_active(tmp_path: Path) -> None:
    run, proxy = runner(tmp_path)
    operator(run, [("go", 0.0), ("halt", 0.2)])
    result = run.run()
    assert result.verdict is Verdict.ABORTED and "halted by the operator (key)" in result.reason
    journal = read(result.journal)
    halted = next(e for e in journal["events"] if e["kind"] == "halted")
    assert halted["active"] == ["slow"]
    assert [e["step"] for e in journal["events"] if e["kind"] == "fault_injected"] == ["slow"]  # pause-sup never ran
    assert [(e["step"], e["ok"]) for e in journal["events"] if e["kind"] == "fault_rolled_back"] == [("slow", True)]
    assert proxy.active_toxics() == 0


def test_auto_runs_on_the_timeline(tmp_path: Path) -> None:
    run, _ = runner(tmp_path, auto=True)
    result = run.run()
    assert result.verdict is Verdict.PASSED
    confirmed = [e for e in read(result.journal)["events"] if e["kind"] == "step_confirmed"]
    assert [e["auto"] for e in confirmed] == [True, True] and run.offset == 0.0
