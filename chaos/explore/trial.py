"""Run one schedule against the real stack: the base experiment with the schedule as its method.

One stack serves every example: a ``StackPool`` (chaos.authoring.pool, the
pytest plugin's) brings it up for the first and renews and verifies it
before each later one (chaos.authoring.reset); a reset that fails or cannot
be verified replaces it with a fresh stack. Each example is an ordinary run
(chaos.run.Runner) with its own journal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.explore.base import Base
from chaos.explore.schedule import Schedule

if TYPE_CHECKING:
    from chaos.authoring.pool import StackPool
    from chaos.run.runner import RunResult


class Outcome(str, Enum):
    PASSED = "passed"
    FAILED = "failed"  # an invariant broke: a recovery, a history check, the steady state after, an abort condition
    UNSETTLED = "unsettled"  # the steady state did not hold before the method: the schedule never ran
    ERRORED = "errored"  # the run could not be done (a reset that failed, a fault that could not be injected)
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM: rolled back, the exploration stops


@dataclass(frozen=True)
class Trial:
    schedule: Schedule
    outcome: Outcome
    reason: str
    journal: str
    failed: tuple[str, ...] = field(default=())  # the assertions that failed
    seconds: float = 0.0
    reused: bool = False  # the stack was renewed, not brought up


def classify(result: RunResult, interrupted: bool) -> Outcome:
    from chaos.run.verdict import Verdict

    if interrupted:
        return Outcome.INTERRUPTED
    if result.verdict is Verdict.PASSED:
        return Outcome.PASSED
    if result.verdict is Verdict.ERRORED:
        return Outcome.ERRORED
    if any(r.phase == "steady_state_before" and not r.ok for r in result.results):
        return Outcome.UNSETTLED
    return Outcome.FAILED


# What runs one experiment: the real runner (run_experiment below) or, in unit tests, a fake.
RunOne = Callable[[Base, Schedule, int], Trial]


class StackTrials:
    """Runs schedules on one pooled stack; a context manager that takes the stack down on exit."""

    def __init__(self, base: Base, journal_dir: Path, pool: StackPool | None = None) -> None:
        from chaos.authoring.pool import StackPool

        self.base = base
        self.journal_dir = journal_dir
        self.pool = pool or StackPool(base.backend)

    def __enter__(self) -> StackTrials:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.close()

    def __call__(self, base: Base, schedule: Schedule, seed: int) -> Trial:
        """One example of the search, on the pooled stack."""
        return self._run(base, schedule, seed, pooled=True)

    def fresh(self, base: Base, schedule: Schedule, seed: int) -> Trial:
        """One run on a stack of its own, as ``roomquake run`` does it (the reruns: a finding must not depend on
        what earlier examples left in the reused stack). The search is over by then: its stack goes first."""
        self.pool.close()
        return self._run(base, schedule, seed, pooled=False)

    def _run(self, base: Base, schedule: Schedule, seed: int, pooled: bool) -> Trial:
        import dataclasses
        import time

        from chaos.run import RunOptions, Runner
        from chaos.signals import INTERRUPTS

        _, experiment = base.make(schedule.method(), seed)
        started = time.monotonic()
        options = RunOptions(backend=base.backend, seed=seed, progress=False, journal_dir=self.journal_dir)
        if pooled:
            lease = self.pool.lease(experiment, base.path)
            experiment = lease.experiment
            options = dataclasses.replace(options, open_stack=lease.open_stack,
                                          stack_origin="reused" if lease.reused else "brought_up")
        runner = Runner(experiment, base.path, options)
        result = runner.run()
        outcome = classify(result, bool(INTERRUPTS.received))
        return Trial(schedule, outcome, result.reason, str(result.journal),
                     tuple(r.check for r in result.results if not r.ok), time.monotonic() - started,
                     runner.stack_origin == "reused")
