"""Recovery is measured from an observed disturbance: reads after the fault, deadlines on read time, 'not disturbed'."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from chaos.experiment.expect import Expectation, parse_expectation
from chaos.run import Verdict
from chaos.run.checks import Outcome, assess, rise_from
from chaos.run.observe import Read

from .fakes import FakeStack
from .test_runner import run


def r(started: float, t: float, value: Any) -> Read:
    return Read(started, t, value)


# --- the pure judgement ----------------------------------------------------------------


def test_a_read_started_before_the_fault_is_no_disturbance() -> None:
    live = parse_expectation("live")
    steady = r(0.4, 0.5, "live")  # the room was live before: the fault must be seen breaking it
    reads = [steady, r(0.9, 1.2, "relaunching"), r(1.1, 1.3, "live"), r(1.4, 1.5, "live")]  # fault injected at t=1.0
    found = assess(reads, live, since=1.0, end=10.0, disturbance=True)
    assert found.first_fail is None and found.first_ok is None  # the only failure was asked for before the fault


def test_a_change_faster_than_the_reads_is_timed_from_the_failing_reads_before_the_fault() -> None:
    """CI beside a CPU hog: the room moved 1.2 s into a kill while no read was in flight; every read begun after the
    kill already showed edge-2. `!= edge-1` held at no read before the kill, so it failed from the start."""
    moved = parse_expectation("!= edge-1")
    before = [r(0.2, 0.3, "edge-1"), r(0.6, 0.9, "edge-1")]  # fault injected at t=0.8; the last read spans it
    after = [r(0.9, 2.1, "edge-2"), r(2.2, 2.3, "edge-2")]
    found = assess(before + after, moved, since=0.8, end=10.0, disturbance=True)
    assert found.first_fail == before[-1] and found.failing_before == 2 and found.first_ok == after[0]
    # one read before the fault that held (a room that had already moved): the fault must be seen failing it
    assert assess([r(0.1, 0.15, "edge-2"), *before, *after], moved, since=0.8, end=10.0, disturbance=True).first_fail is None
    # the last read before it unreadable: nothing was seen failing, so nothing is inferred
    blind = [*before, r(0.7, 0.75, None)]
    assert assess(blind + after, moved, since=0.8, end=10.0, disturbance=True).first_fail is None
    # no read before the fault at all: nothing to infer from either
    assert assess(after, moved, since=0.8, end=10.0, disturbance=True).first_fail is None


def test_the_pass_must_come_after_the_first_failure() -> None:
    live = parse_expectation("live")
    reads = [r(1.0, 1.1, "live"), r(1.2, 1.3, "live"), r(1.4, 1.5, "relaunching"), r(1.6, 1.7, "live")]
    found = assess(reads, live, since=1.0, end=10.0, disturbance=True)
    assert found.first_fail == reads[2] and found.first_ok == reads[3]  # not the stale 'live' at 1.1
    # an unreadable sample is a failure too (the service could not answer)
    found = assess([r(1.0, 1.1, None), r(1.2, 1.3, "live")], live, since=1.0, end=10.0, disturbance=True)
    assert found.first_fail is not None and found.first_fail.value is None and found.first_ok is not None


def test_a_value_in_hand_after_the_deadline_never_passes() -> None:
    moved = parse_expectation("!= edge-1")
    reads = [r(1.0, 1.1, "edge-1"), r(9.5, 25.05, "edge-2")]  # asked before the deadline, answered 15s after it
    found = assess(reads, moved, since=1.0, end=11.0, disturbance=True)
    assert found.first_fail is not None and found.first_ok is None


# --- in the runner, on the fake stack ------------------------------------------------------


def killed_at(stack: FakeStack) -> dict[str, float]:
    """Record when the fake's edge was killed (its probes below react to it)."""
    when: dict[str, float] = {}
    kill = stack.kill

    def recording(name: str) -> None:
        when.setdefault("t", time.monotonic())
        kill(name)

    stack.kill = recording  # type: ignore[method-assign]
    return when


def since_kill(when: dict[str, float]) -> float:
    return time.monotonic() - when["t"] if "t" in when else -1.0


def test_a_probe_that_passes_before_the_fault_shows_is_timed_from_its_later_failure(tmp_path: Path) -> None:
    """The issue's fake figure: room.state still 'live' right after the kill (control had not noticed yet)."""
    stack = FakeStack(relaunch_s=5)
    when = killed_at(stack)
    relaunching = {"reads": 0}

    def state() -> str:
        # 'live' (stale) for 0.4 s after the kill, then 'relaunching' for 5 reads, then 'live' again. Counted
        # in reads, not seconds: a worker starved beside a CPU hog once took no sample in a 0.5 s window.
        if since_kill(when) < 0.4 or relaunching["reads"] >= 5:
            return "live"
        relaunching["reads"] += 1
        return "relaunching"

    stack.value_overrides["room.state"] = state
    stack.value_overrides["crowd.connected_ratio"] = 1.0
    body = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: live-again, probe: room.state, expect: live, within: 5s, after: kill-edge}
"""
    result, journal, *_ = run(body, tmp_path, stack)
    assert result.verdict is Verdict.PASSED, result.reason
    check = next(a for a in journal["assertions"] if a["check"] == "live-again")
    assert check["outcome"] == "ok" and check["disturbed_by"] == "value"
    [injected] = [e["t"] for e in journal["events"] if e["kind"] == "fault_injected"]
    series = [(t, v) for t, v in check["observed"] if t >= injected]
    failed_at = next(t for t, v in series if v == "relaunching")
    back_at = next(t for t, v in series if t > failed_at and v == "live")
    # from the kill to the first 'live' after 'relaunching', never from the stale 'live' before it (~0)
    assert back_at - injected - 0.01 <= check["recovery_s"]
    assert journal["recovery_times"] == {"live-again": check["recovery_s"]}
    assert "disturbed at t=" in check["message"]


def test_a_probe_that_never_fails_is_not_disturbed_and_has_no_recovery_time(tmp_path: Path) -> None:
    stack = FakeStack(relaunch_s=0.2)
    stack.value_overrides["crowd.connected_ratio"] = 1.0  # the crowd never noticed
    body = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: listeners-back, probe: crowd.connected_ratio, expect: ">= 0.9", within: 1s, after: kill-edge}
"""
    result, journal, *_ = run(body, tmp_path, stack)
    check = next(a for a in journal["assertions"] if a["check"] == "listeners-back")
    assert result.verdict is Verdict.DEVIATED  # the default: a recovery check that measured nothing fails
    assert check["outcome"] == "not_disturbed" and not check["ok"] and check["recovery_s"] is None
    assert "not disturbed" in check["message"] and "undisturbed: pass" in check["message"]
    # it says the probe held before the fault too (the ratio was 1.0 all along), the usual cause
    assert "and already before it (1 at t=" in check["message"], check["message"]
    assert journal["recovery_times"] == {} and journal["not_disturbed"] == ["listeners-back"]

    accepted = body.replace("after: kill-edge}", "after: kill-edge, undisturbed: pass}")
    result, journal, *_ = run(accepted, tmp_path / "ok", FakeStack(relaunch_s=0.2, value_overrides={"crowd.connected_ratio": 1.0}))
    check = next(a for a in journal["assertions"] if a["check"] == "listeners-back")
    assert result.verdict is Verdict.PASSED, result.reason
    assert check["outcome"] == "not_disturbed" and check["ok"] and check["recovery_s"] is None
    assert journal["recovery_times"] == {}


KILL_THEN_MOVED = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: moved, probe: room.edge, expect: "!= {kill-edge.hit}", within: WITHIN, after: kill-edge}
"""


def test_a_room_moved_before_any_read_after_the_kill_is_timed_not_undisturbed(tmp_path: Path) -> None:
    stack = FakeStack(relaunch_s=5)
    when = killed_at(stack)
    stack.value_overrides["room.edge"] = lambda: "edge-2" if "t" in when else "edge-1"  # moved at once
    stack.value_overrides["room.state"] = "live"
    stack.value_overrides["crowd.connected_ratio"] = 1.0
    result, journal, *_ = run(KILL_THEN_MOVED.replace("WITHIN", "5s"), tmp_path, stack)
    assert result.verdict is Verdict.PASSED, result.reason
    check = next(a for a in journal["assertions"] if a["check"] == "moved")
    assert check["outcome"] == "ok" and check["disturbed_by"] == "value"
    assert "disturbed from the start: not met at any of the" in check["message"], check["message"]
    assert "reads begun before kill-edge injected (the last: 'edge-1' at t=" in check["message"], check["message"]
    # timed from the anchor to the first read that showed edge-2, later than the last read before the kill
    assert 0 <= check["recovery_s"] < 5 and journal["recovery_times"] == {"moved": check["recovery_s"]}
    assert check["passed_with"][1] == "edge-2" and check["disturbed_at"] < check["passed_with"][0]


def test_the_deadline_holds_on_the_time_a_value_was_read(tmp_path: Path) -> None:
    """A pass whose value comes in after the deadline does not count, however the reads were scheduled."""
    stack = FakeStack(relaunch_s=5)
    when = killed_at(stack)
    after_kill = {"reads": 0}

    def edge() -> str:
        if since_kill(when) < 0 or after_kill["reads"] < 3:  # counted in reads: a starved worker may take none in 0.3 s
            after_kill["reads"] += since_kill(when) >= 0
            return "edge-1"
        time.sleep(1.5)  # every later read is answered 1.5s after it was asked: after the 1s deadline
        return "edge-2"

    stack.value_overrides["room.edge"] = edge
    result, journal, *_ = run(KILL_THEN_MOVED.replace("WITHIN", "1s"), tmp_path, stack)
    check = next(a for a in journal["assertions"] if a["check"] == "moved")
    assert not check["ok"] and check["outcome"] == "failed" and check["recovery_s"] is None
    assert "not met by t=" in check["message"]


def test_a_recovery_over_before_the_recovery_phase_is_still_timed_from_the_samples(tmp_path: Path) -> None:
    """Disturbance and recovery inside the method: the figure comes from the series, not from when polling began."""
    body = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}}
  - wait: 4s
recovery:
  - {id: relaunched, probe: room.relaunches, expect: ">= 1", within: 6s, after: kill-edge}
"""
    result, journal, *_ = run(body, tmp_path, FakeStack(relaunch_s=0.3))
    assert result.verdict is Verdict.PASSED, result.reason
    recovery = journal["recovery_times"]["relaunched"]
    killed = next(e for e in journal["events"] if e["kind"] == "fault_injected")["began"]
    polling = next(e["t"] for e in journal["events"] if e["kind"] == "phase_started" and e["phase"] == "recovery")
    assert 0.3 <= recovery < polling - killed  # timed from the samples, not from when the recovery phase began


def test_a_deadline_shorter_than_the_sampling_still_says_what_the_probe_showed(tmp_path: Path) -> None:
    body = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: at-once, probe: room.relaunches, expect: ">= 1", within: 10ms, after: kill-edge}
"""
    result, journal, *_ = run(body, tmp_path, FakeStack(relaunch_s=5))
    check = next(a for a in journal["assertions"] if a["check"] == "at-once")
    assert not check["ok"] and check["observed"] and check["observed"][-1][1] == 0.0
    assert "last observed 0 at t=" in check["message"]


def test_a_recovery_during_its_fault_is_given_from_the_injection_not_as_0s_from_the_end(tmp_path: Path) -> None:
    """A relaunch 0.3 s into a 3 s fault: "0.00 s after the fault ended" says little; the figure shown is the 0.3 s."""
    from chaos.run.progress import summary

    body = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}, for: 3s}
recovery:
  - {id: relaunched, probe: room.relaunches, expect: ">= 1", within: 6s, after: kill-edge}
"""
    result, journal, *_ = run(body, tmp_path, FakeStack(relaunch_s=0.3))
    assert result.verdict is Verdict.PASSED, result.reason
    assert journal["recovery_times"]["relaunched"] == 0.0  # the clock starts at the fault's end, as documented
    back = journal["back_during"]["relaunched"]
    assert 0.3 <= back < 3.0
    [line] = [x for x in summary(journal) if x.startswith("recovered: relaunched")]
    assert line == f"recovered: relaunched back {back:.2f}s after the fault began, before kill-edge ending"
    [assertion] = [a for a in journal["assertions"] if a["check"] == "relaunched"]
    assert assertion["back_during_s"] == back and f"{back:.2f}s after kill-edge injected, before kill-edge ending" in assertion["message"]


def test_a_failure_on_unreadable_samples_says_why_they_were_unreadable(tmp_path: Path) -> None:
    """'27 samples, 27 unreadable' alone cannot be diagnosed: the message and the journal keep the read errors."""
    stack = FakeStack(relaunch_s=0.2)
    when = killed_at(stack)

    def state() -> str:
        if since_kill(when) >= 0:
            raise ConnectionError("503 from control: state unreachable: TimeoutError")
        return "live"

    stack.value_overrides["room.state"] = state
    stack.value_overrides["crowd.connected_ratio"] = 1.0
    body = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: live-again, probe: room.state, expect: live, within: 1s, after: kill-edge}
"""
    result, journal, *_ = run(body, tmp_path, stack)
    assert result.verdict is Verdict.DEVIATED
    check = next(a for a in journal["assertions"] if a["check"] == "live-again")
    assert "unreadable" in check["message"]
    assert "last read error" in check["message"] and "state unreachable: TimeoutError" in check["message"]
    log = next(v for k, v in journal["probe_error_log"].items() if k.startswith("room.state"))
    assert len(log) == 1 and "state unreachable" in log[0][1]  # 1 entry for many reads with the same error


# --- {rises_by: N}: a counter judged from its value before the fault ----------------------


def test_a_rise_is_bound_to_the_last_read_before_the_fault() -> None:
    rises = parse_expectation({"rises_by": 1}, rises=True)
    reads = [r(0.2, 0.3, 0.0), r(0.7, 0.8, 1.0), r(1.1, 1.2, 1.0)]  # fault injected at t=1.0; a relaunch at 0.5
    bound = rise_from("relaunched", rises, reads, since=1.0, since_name="kill-edge injected")
    assert isinstance(bound, Expectation)
    assert bound.op == ">=" and bound.values == (2.0,)
    assert str(bound) == ">= 2 (rises by 1 from 1 at t=0.80s)"
    assert not bound.holds(1.0) and bound.holds(2.0)
    assert not rises.holds(5.0)  # unbound, it holds for nothing


def test_a_rise_with_nothing_read_before_the_fault_fails_and_says_so() -> None:
    rises = parse_expectation({"rises_by": 1}, rises=True)
    for reads in ([r(1.1, 1.2, 1.0)], [r(0.5, 0.6, None)], [r(0.5, 0.6, "live")]):
        outcome = rise_from("relaunched", rises, reads, since=1.0, since_name="kill-edge injected")
        assert isinstance(outcome, Outcome) and not outcome.ok
        assert "rise from" in outcome.message or "not a number" in outcome.message, outcome.message


def test_rises_by_is_refused_outside_a_recovery_check() -> None:
    for raw in ({"rises_by": 1}, {"rises_by": 0}):
        with pytest.raises(ValueError):
            parse_expectation(raw)
    with pytest.raises(ValueError, match="positive"):
        parse_expectation({"rises_by": -1}, rises=True)


def test_a_relaunch_before_the_fault_cannot_stand_in_for_the_faults_own(tmp_path: Path) -> None:
    """The CI failure behind rises_by: a relaunch nobody injected, before the kill, left '>= 1' met at every
    read after it (not disturbed: the check measured nothing). Counted from the value before the kill, the
    same run measures the kill's own relaunch and its time."""
    body = """
method:
  - {id: kill-edge, at: 500ms, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: relaunched, probe: room.relaunches, expect: EXPECT, within: 6s, after: kill-edge}
"""
    absolute = FakeStack(relaunch_s=0.3)
    absolute.relaunches = 1  # the earlier relaunch
    result, journal, *_ = run(body.replace("EXPECT", '">= 1"'), tmp_path / "absolute", absolute)
    check = next(a for a in journal["assertions"] if a["check"] == "relaunched")
    assert result.verdict is Verdict.DEVIATED and check["outcome"] == "not_disturbed"
    assert "already before it (1 at t=" in check["message"]

    relative = FakeStack(relaunch_s=0.3)
    relative.relaunches = 1
    result, journal, *_ = run(body.replace("EXPECT", "{rises_by: 1}"), tmp_path / "relative", relative)
    check = next(a for a in journal["assertions"] if a["check"] == "relaunched")
    assert result.verdict is Verdict.PASSED, result.reason
    assert relative.relaunches == 2 and check["ok"]
    assert check["expect"].startswith(">= 2 (rises by 1 from 1 at t=")  # what was judged
    assert 0.3 <= journal["recovery_times"]["relaunched"] < 6
    assert "expected >= 2 (rises by 1 from 1 at t=" in check["message"], check["message"]
