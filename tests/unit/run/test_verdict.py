"""The verdict as a pure function of what a run gathered (chaos.run.verdict.judge): every input, every rule."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from chaos.run.verdict import Judgement, Leftovers, Results, Rollback, Stopped, Verdict, judge


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool = True
    outcome: str = "ok"
    message: str = ""


def failed(check: str, message: str = "", outcome: str = "failed") -> Check:
    return Check(check, ok=False, outcome=outcome, message=message or f"{check}: not met")


def test_nothing_wrong_is_a_pass() -> None:
    assert judge(Results()) == Judgement(Verdict.PASSED, "steady state held and every assertion was met", 0, None)
    assert judge(Results(assertions=[Check("a"), Check("b")])).verdict is Verdict.PASSED


def test_a_failed_assertion_is_a_deviation_naming_the_first() -> None:
    got = judge(Results(assertions=[Check("a"), failed("b", "b: expected live"), failed("c")]))
    assert got == Judgement(Verdict.DEVIATED, "2 assertion(s) failed; first: b: expected live", 1, None)


def test_an_undisturbed_recovery_that_was_refused_fails_like_any_assertion() -> None:
    got = judge(Results(assertions=[failed("back", "back: not disturbed", outcome="not_disturbed")]))
    assert got.verdict is Verdict.DEVIATED and got.reason.endswith("back: not disturbed")


@pytest.mark.parametrize("verdict", [Verdict.DEVIATED, Verdict.ABORTED, Verdict.ERRORED])
def test_an_early_stop_sets_the_verdict_and_failed_assertions_do_not_change_it(verdict: Verdict) -> None:
    got = judge(Results(stopped=Stopped(verdict, "why"), assertions=[failed("a")]))
    assert (got.verdict, got.reason, got.exit_code) == (verdict, "why", verdict.exit_code)


def test_a_failed_teardown_makes_only_a_pass_an_error() -> None:
    assert judge(Results(teardown_error="boom")) == Judgement(Verdict.ERRORED, "teardown failed: boom", 4, None)
    deviated = judge(Results(stopped=Stopped(Verdict.DEVIATED, "steady"), teardown_error="boom"))
    assert (deviated.verdict, deviated.reason) == (Verdict.DEVIATED, "steady")


def test_leftovers_after_teardown_are_an_error_on_every_path() -> None:
    left = Leftovers("stack-1", ["container rq-edge-1"])
    message = ("teardown left container rq-edge-1 of stack stack-1 behind; "
               "remove it with: roomquake clean (once this command has ended)")
    assert judge(Results(leftovers=left)) == Judgement(Verdict.ERRORED, message, 4, None)
    assert judge(Results(stopped=Stopped(Verdict.DEVIATED, "d"), leftovers=left)).reason == message
    aborted = judge(Results(stopped=Stopped(Verdict.ABORTED, "SIGINT received"), leftovers=left))
    assert aborted.verdict is Verdict.ERRORED and aborted.reason == f"SIGINT received; but {message}"
    assert judge(Results(leftovers=Leftovers("stack-1", []))).verdict is Verdict.PASSED  # verified clean


def test_a_failed_rollback_errors_a_pass_or_a_deviation_and_names_the_first() -> None:
    rollbacks = [Rollback("a"), Rollback("b", ["edge-1: resume failed", "edge-2: gone"]), Rollback("c", ["x"])]
    want = Judgement(Verdict.ERRORED, "rollback of b failed: edge-1: resume failed; edge-2: gone", 4, None)
    assert judge(Results(rollbacks=rollbacks)) == want
    assert judge(Results(rollbacks=rollbacks, assertions=[failed("z")])) == want
    assert judge(Results(stopped=Stopped(Verdict.DEVIATED, "d"), rollbacks=rollbacks)) == want
    aborted = judge(Results(stopped=Stopped(Verdict.ABORTED, "halted"), rollbacks=rollbacks))
    assert (aborted.verdict, aborted.reason) == (Verdict.ABORTED, "halted")


def test_teardown_and_leftovers_win_over_a_failed_rollback() -> None:
    rollbacks = [Rollback("b", ["boom"])]
    assert judge(Results(rollbacks=rollbacks, teardown_error="t")).reason == "teardown failed: t"
    assert judge(Results(rollbacks=rollbacks, leftovers=Leftovers("s", ["net"]))).reason.startswith("teardown left net")


def test_a_known_weakness_passes_only_when_exactly_its_assertions_fail() -> None:
    declared = ["kicks", "back"]
    shown = judge(Results(assertions=[failed("kicks"), failed("back"), Check("live")], known_weakness=declared))
    assert (shown.verdict, shown.exit_code, shown.as_declared) == (Verdict.DEVIATED, 0, True)
    other = judge(Results(assertions=[failed("kicks"), failed("live")], known_weakness=declared))
    assert (other.verdict, other.exit_code, other.as_declared) == (Verdict.DEVIATED, 1, False)
    passed = judge(Results(assertions=[Check("kicks")], known_weakness=declared))
    assert (passed.verdict, passed.exit_code, passed.as_declared) == (Verdict.PASSED, 1, False)
    assert passed.reason.startswith("passed, but the declared known weakness did not show: ")


def test_a_declared_assertion_that_was_not_disturbed_did_not_show_the_weakness() -> None:
    got = judge(Results(assertions=[failed("back", outcome="not_disturbed")], known_weakness=["back"]))
    assert (got.verdict, got.exit_code, got.as_declared) == (Verdict.DEVIATED, 1, False)


@pytest.mark.parametrize("verdict", [Verdict.ABORTED, Verdict.ERRORED])
def test_a_known_weakness_leaves_an_abort_or_an_error_as_it_is(verdict: Verdict) -> None:
    got = judge(Results(stopped=Stopped(verdict, "r"), known_weakness=["a"], assertions=[failed("a")]))
    assert (got.verdict, got.exit_code, got.as_declared) == (verdict, verdict.exit_code, False)

