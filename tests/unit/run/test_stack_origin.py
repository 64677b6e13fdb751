"""How a run got its stack (brought up, reused from a pool, attached) reaches every display, on fakes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from chaos.authoring.pool import StackPool
from chaos.experiment.validate import validate_text
from chaos.report import write_report
from chaos.report.data import environment, event_text
from chaos.report.text import explain
from chaos.run import RunOptions, Runner, Verdict
from chaos.run.journal import read
from chaos.run.progress import Progress

from .fakes import FakeOpener, FakeProxy, FakeStack

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENT = """
title: t
seed: 5
settle: 300ms
sample_every: 50ms
load: {room: launch, listeners: 10}
steady_state:
  - {id: live, probe: room.state, expect: live}
method:
  - wait: 100ms
"""


def run(tmp_path: Path, name: str, **options: Any) -> tuple[dict[str, Any], str]:
    exp, problems = validate_text(EXPERIMENT, "x.yaml")
    assert not problems
    runner = Runner(exp, ROOT / "experiments" / "x.yaml", RunOptions(
        journal=tmp_path / f"{name}.json", progress=False, make_proxy=lambda url: FakeProxy(), **options))
    out = io.StringIO()
    runner.bus.subscribe(Progress(out))
    result = runner.run()
    assert result.verdict is Verdict.PASSED, result.reason
    return read(result.journal), out.getvalue()


def ready(journal: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in journal["events"] if e["kind"] == "stack_ready")


def started(journal: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in journal["events"] if e["kind"] == "run_started")


def shown(tmp_path: Path, journal: dict[str, Any], name: str) -> tuple[str, str, str]:
    """What the text report (failure message), the event log and the HTML report say about the stack."""
    html = write_report(journal, tmp_path / f"{name}.html").read_text()
    stack_row = dict(environment(journal))["stack"]
    return explain(journal), stack_row, html


def pooled(pool: StackPool, tmp_path: Path, name: str) -> tuple[dict[str, Any], str]:
    exp, _ = validate_text(EXPERIMENT, "x.yaml")
    lease = pool.lease(exp, ROOT / "experiments" / "x.yaml")
    return run(tmp_path, name, open_stack=lease.open_stack, stack_origin="reused" if lease.reused else None)


def test_a_pooled_stack_is_brought_up_once_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chaos.stack.start_stack", lambda *a, **k: FakeStack(run_id="pooled"))
    monkeypatch.setattr("chaos.authoring.reset.reset", lambda stack, **settings: ["proxies reset"])
    with StackPool("local") as pool:
        first, first_progress = pooled(pool, tmp_path, "first")
        second, second_progress = pooled(pool, tmp_path, "second")
    assert ready(first)["origin"] == "brought_up" and started(first)["mode"] == "bring_up"
    assert ready(second)["origin"] == "reused" and started(second)["mode"] == "reuse"
    assert second["stack_origin"] == "reused" and not ready(second)["attached"]
    assert "stack brought up: " in first_progress and ", bring up)" in first_progress
    assert "stack reused: " in second_progress and ", reuse)" in second_progress
    assert "brought up" not in second_progress and "bring up" not in second_progress
    text, row, html = shown(tmp_path, second, "second")
    assert row == "audio-room (run pooled, reused)" and "stack reused: " in event_text(ready(second))
    assert "brought up" not in text + row + html and "stack reused" in html and "reused" in html


def test_a_pool_that_must_start_afresh_says_brought_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(stack: Any, **settings: Any) -> list[str]:
        raise RuntimeError("proxy API unreachable")

    monkeypatch.setattr("chaos.stack.start_stack", lambda *a, **k: FakeStack())
    monkeypatch.setattr("chaos.authoring.reset.reset", broken)
    with StackPool("local") as pool:
        pooled(pool, tmp_path, "first")
        second, progress = pooled(pool, tmp_path, "second")
    # the lease expected reuse; the opener found out otherwise and the event says what happened
    assert started(second)["mode"] == "reuse" and ready(second)["origin"] == "brought_up"
    assert "reset failed (proxy API unreachable)" in progress and "stack brought up: " in progress


def test_attached_and_brought_up_stacks(tmp_path: Path) -> None:
    attached, progress = run(tmp_path, "attached", attach="latest", open_stack=FakeOpener(FakeStack()))
    assert ready(attached)["origin"] == "attached" and ready(attached)["attached"] and started(attached)["mode"] == "attach"
    assert "stack attached: " in progress and "brought up" not in progress
    text, row, html = shown(tmp_path, attached, "attached")
    assert row.endswith(", attached)") and "brought up" not in text + html
    fresh, progress = run(tmp_path, "fresh", open_stack=FakeOpener(FakeStack()))
    assert ready(fresh)["origin"] == "brought_up" and "stack brought up: " in progress
    assert dict(environment(fresh))["stack"].endswith(", brought up)")


def test_journals_from_before_origin_still_read() -> None:
    old = {"kind": "stack_ready", "t": 1.0, "instances": ["edge-1"], "backend": "local", "attached": True}
    assert event_text(old) == "stack attached: 1 instances (local)"
    assert event_text({**old, "attached": False}) == "stack brought up: 1 instances (local)"
    assert dict(environment({"experiment": {"stack": "s"}, "events": [old]}))["stack"] == "s (run ?, attached)"
