"""A flaky system must not fool the search: the smallest failure is run again K times before it is reported.

``found`` only when every rerun failed as well; a schedule that failed in the
search and then passed (even once) is ``flaky``, with how often it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chaos.explore.base import Base
from chaos.explore.schedule import Schedule
from chaos.explore.trial import Outcome, RunOne, Trial


@dataclass(frozen=True)
class Confirmation:
    trials: tuple[Trial, ...]
    wanted: int  # K: the reruns asked for

    @property
    def failed(self) -> int:
        return sum(1 for t in self.trials if t.outcome is Outcome.FAILED)

    @property
    def runs(self) -> int:
        """Reruns that ran to a verdict (an interrupted or errored one counts for neither side)."""
        return sum(1 for t in self.trials if t.outcome in (Outcome.FAILED, Outcome.PASSED))

    @property
    def status(self) -> str:
        """found (failed K/K) | flaky (passed at least once) | unconfirmed (fewer than K reruns, none passed)."""
        if self.runs > self.failed:
            return "flaky"
        return "found" if self.failed == self.wanted else "unconfirmed"

    def summary(self) -> str:
        return f"failed {self.failed}/{self.wanted} reruns"


def confirm(base: Base, schedule: Schedule, run_one: RunOne, seed: int, reruns: int,
            on_trial: Callable[[int, Trial], None] = lambda n, t: None,
            interrupted: Callable[[], bool] = lambda: False) -> Confirmation:
    trials: list[Trial] = []
    for n in range(1, reruns + 1):
        if interrupted():
            break
        trial = run_one(base, schedule, seed)
        trials.append(trial)
        on_trial(n, trial)
        if trial.outcome is Outcome.INTERRUPTED:
            break
    return Confirmation(tuple(trials), reruns)
