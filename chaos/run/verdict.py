"""The verdict of a run: a pure function of what the run gathered (Jepsen's checker).

The runner only gathers ``Results``: how its lifecycle ended if it stopped
early, every assertion's result, every rollback, the teardown's error and
what it left behind, the known weakness the file declares. ``judge`` alone
turns them into the verdict, its reason, the exit code and whether a
declared weakness showed as declared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


class Verdict(str, Enum):
    PASSED = "passed"  # steady state held, every assertion met
    DEVIATED = "deviated"  # a steady-state, method or recovery assertion failed
    ABORTED = "aborted"  # an abort condition fired, or the run was interrupted (Ctrl-C, SIGTERM)
    ERRORED = "errored"  # the experiment could not run (stack, fault or probe failure)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


# 2 is kept for usage errors, as everywhere in the CLI.
EXIT_CODES = {Verdict.PASSED: 0, Verdict.DEVIATED: 1, Verdict.ABORTED: 3, Verdict.ERRORED: 4}
PASSED_REASON = "steady state held and every assertion was met"


class Assertion(Protocol):
    """One judged assertion (chaos.run.events.CheckResult is one)."""

    @property
    def check(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def outcome(self) -> str: ...  # ok | failed | not_disturbed
    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class Stopped:
    """The lifecycle ended early: steady state did not hold before the method (deviated), an abort
    condition or a signal (aborted), or the run could not go on (errored)."""

    verdict: Verdict
    reason: str


@dataclass(frozen=True)
class Rollback:
    step: str
    errors: Sequence[str] = ()  # one per part that could not be undone

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Leftovers:
    """What of a stack the run took down still exists after its teardown."""

    stack: str
    items: Sequence[str]

    def message(self) -> str:
        return (f"teardown left {', '.join(self.items)} of stack {self.stack} behind; "
                f"remove it with: roomquake clean (once this command has ended)")


@dataclass(frozen=True)
class Results:
    stopped: Stopped | None = None  # None: the lifecycle ran to its end
    assertions: Sequence[Assertion] = ()
    rollbacks: Sequence[Rollback] = ()  # in the order they were done
    teardown_error: str | None = None
    leftovers: Leftovers | None = None  # None: not torn down by this run (attached, pooled) or nothing left
    known_weakness: Sequence[str] | None = None  # ids the file declares must fail, and only those


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    exit_code: int
    as_declared: bool | None  # None: no known weakness declared


def _failed_ids(assertions: Sequence[Assertion]) -> set[str]:
    # a declared check that was not disturbed did not show the weakness: it counts apart from a real failure
    return {a.check if a.outcome != "not_disturbed" else f"{a.check} (not disturbed)" for a in assertions if not a.ok}


def judge(results: Results) -> Judgement:
    """The verdict. Rules, in order: an early stop sets it; a failed teardown makes a pass an error;
    anything left after teardown is an error; a failed rollback makes a pass or a deviation an error;
    a pass with a failed assertion is a deviation. A declared known weakness passes (exit 0) only when
    the run deviated by exactly the declared assertions."""
    if results.stopped is not None:
        verdict, reason = results.stopped.verdict, results.stopped.reason
    else:
        verdict, reason = Verdict.PASSED, PASSED_REASON
    if results.teardown_error is not None and verdict is Verdict.PASSED:
        verdict, reason = Verdict.ERRORED, f"teardown failed: {results.teardown_error}"
    if results.leftovers is not None and results.leftovers.items:
        message = results.leftovers.message()
        reason = f"{reason}; but {message}" if verdict is Verdict.ABORTED else message
        verdict = Verdict.ERRORED
    failed_rollbacks = [r for r in results.rollbacks if not r.ok]
    if failed_rollbacks and verdict in (Verdict.PASSED, Verdict.DEVIATED):
        first = failed_rollbacks[0]
        verdict, reason = Verdict.ERRORED, f"rollback of {first.step} failed: {'; '.join(first.errors)}"
    if verdict is Verdict.PASSED:
        failed = [a for a in results.assertions if not a.ok]
        if failed:
            verdict, reason = Verdict.DEVIATED, f"{len(failed)} assertion(s) failed; first: {failed[0].message}"
    as_declared = None
    code = verdict.exit_code
    if results.known_weakness is not None:
        as_declared = verdict is Verdict.DEVIATED and _failed_ids(results.assertions) == set(results.known_weakness)
        if verdict in (Verdict.PASSED, Verdict.DEVIATED):
            code = 0 if as_declared else Verdict.DEVIATED.exit_code
            if verdict is Verdict.PASSED:
                reason = "passed, but the declared known weakness did not show: " + reason
    return Judgement(verdict, reason, code, as_declared)
