"""The fault registry and the one undo path (chaos.faults), on the runner's fakes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Literal

import pytest

from chaos import faults
from chaos.experiment import model as m
from chaos.faults import base
from chaos.faults.base import Fault, FaultContext, Injection, Part, StackFacts, Undo, fault_name, register
from chaos.faults.model import FaultBase, ServerFault
from chaos.faults.undo import perform, replay, roll_back, undo_parts

from .fakes import FakeProxy, FakeStack


def test_every_registered_fault_is_an_experiment_step_and_has_a_handler() -> None:
    assert set(faults.kinds()) == set(m.FAULTS) and len(m.FAULTS) == 22
    for name, kind in faults.kinds().items():
        assert m.FAULTS[name] is kind.model and fault_name(kind.model) == name
        assert isinstance(kind.handler, Fault)


@pytest.mark.parametrize("first", ["chaos.faults.server", "chaos.faults", "chaos.experiment.model",
                                   "chaos.experiment.validate", "chaos.run", "chaos.authoring", "chaos.run.ledger"])
def test_the_model_sees_every_fault_whatever_is_imported_first(first: str) -> None:
    code = f"import {first}\nfrom chaos.experiment.model import FAULTS\nprint(len(FAULTS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "22"


class Trial(ServerFault):
    fault: Literal["trial-unit"]


class TrialHandler(Fault[Trial]):
    def __init__(self) -> None:
        self.prepared: list[str] = []

    def check(self, step: Trial, stack: StackFacts) -> Iterator[tuple[base.PathKey, str]]:
        yield ("target",), "checked"

    def prepare(self, step: Trial, step_id: str, ctx: FaultContext) -> list[Part]:
        self.prepared.append(step_id)

        def do() -> Undo:
            ctx.stack.pause("edge-1")
            return ("stack", "resume", "edge-1")

        return [Part("edge-1", do)]


@pytest.fixture
def trial(monkeypatch: pytest.MonkeyPatch) -> TrialHandler:
    monkeypatch.setattr(base, "_KINDS", dict(base._KINDS))  # registered for this test only
    handler = TrialHandler()
    register(Trial, handler)
    return handler


def test_a_registered_handler_is_what_prepares_and_injects_its_model(trial: TrialHandler) -> None:
    stack = FakeStack()
    ctx = FaultContext(stack, FakeProxy)
    step = Trial(fault="trial-unit", target={"service": "edge"})  # type: ignore[arg-type]
    done = Injection("s1", step.fault)
    faults.inject(step, "s1", ctx, done.register)
    assert trial.prepared == ["s1"] and done.parts == [("edge-1", ("stack", "resume", "edge-1"))]
    assert list(faults.kind_of(step).handler.check(step, StackFacts(None, {}))) == [(("target",), "checked")]
    assert roll_back(done, ctx, now=lambda: 7.0) == [] and done.rolled_back_t == 7.0
    assert stack.calls == [("pause", "edge-1"), ("resume", "edge-1")]


def test_a_fault_name_is_registered_once(trial: TrialHandler) -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register(Trial, TrialHandler())

    class Loose(FaultBase):
        fault: str

    with pytest.raises(TypeError, match=r"Literal\['<name>'\]"):
        register(Loose, TrialHandler())  # type: ignore[arg-type]


def test_no_handler_is_a_clear_error() -> None:
    step = Trial(fault="trial-unit", target={"service": "edge"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no handler for fault 'trial-unit'"):
        faults.prepare(step, "s", FaultContext(FakeStack(), FakeProxy))


def test_undo_keeps_going_after_a_failure_reports_it_and_tells_what_was_undone() -> None:
    stack, proxy = FakeStack(), FakeProxy()
    stack.fail_ops = {("resume", "edge-2")}
    for name in ("edge-1", "edge-2", "edge-3"):
        stack.pause(name)
    undone: list[Undo] = []
    parts = [(f"edge-{n}", ("stack", "resume", f"edge-{n}")) for n in (1, 2, 3)] + [("restart", None)]
    errors = undo_parts(parts, FaultContext(stack, lambda: proxy), undone.append)
    assert errors == ["edge-2: resume edge-2 failed"]
    assert undone == [("stack", "resume", "edge-3"), ("stack", "resume", "edge-1")]  # newest first, failure skipped


def test_the_proxy_client_is_made_only_for_an_undo_that_needs_it() -> None:
    made: list[int] = []
    stack = FakeStack()
    ctx = FaultContext(stack, lambda: made.append(1) or FakeProxy())  # type: ignore[func-returns-value]
    stack.pause("edge-1")
    perform(("stack", "resume", "edge-1"), ctx)
    assert made == []
    perform(("proxy", "set_enabled", "crowd->edge-1", "true"), ctx)
    perform(("proxy", "set_enabled", "crowd->edge-2", "true"), ctx)
    assert made == [1]


def test_an_unknown_undo_is_refused_and_a_replay_counts() -> None:
    ctx = FaultContext(FakeStack(), FakeProxy)
    with pytest.raises(ValueError, match="unknown undo"):
        perform(("stack", "explode", "edge-1"), ctx)
    done, failed = replay([("stack", "resume", "edge-1"), ("stack", "explode", "edge-2")], ctx)
    assert done == 1 and len(failed) == 1 and "unknown undo" in failed[0]


def test_a_rollback_happens_once() -> None:
    stack = FakeStack()
    ctx = FaultContext(stack, FakeProxy)
    stack.pause("edge-1")
    injection = Injection("s", "pause", parts=[("edge-1", ("stack", "resume", "edge-1"))])
    roll_back(injection, ctx)
    roll_back(injection, ctx)
    assert stack.calls.count(("resume", "edge-1")) == 1 and injection.rolled_back
