"""Verdicts and their exit codes (2 is kept for usage errors, as everywhere in the CLI)."""

from __future__ import annotations

from enum import Enum


class Verdict(str, Enum):
    PASSED = "passed"  # steady state held, every assertion met
    DEVIATED = "deviated"  # a steady-state, method or recovery assertion failed
    ABORTED = "aborted"  # an abort condition fired, or the run was interrupted (Ctrl-C, SIGTERM)
    ERRORED = "errored"  # the experiment could not run (stack, fault or probe failure)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]


EXIT_CODES = {Verdict.PASSED: 0, Verdict.DEVIATED: 1, Verdict.ABORTED: 3, Verdict.ERRORED: 4}
SEVERITY = [Verdict.PASSED, Verdict.DEVIATED, Verdict.ABORTED, Verdict.ERRORED]


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=SEVERITY.index, default=Verdict.PASSED)
