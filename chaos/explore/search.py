"""The search: Hypothesis draws schedules, runs each once, and shrinks the first failure.

Hypothesis is the engine (generation, shrinking, its example database for
replay, the seed); this module only adapts it to examples that take tens of
seconds on a real stack:

- a time budget instead of a number of examples: once the search budget is
  spent the next draw stops Hypothesis (``StopSearch``); shrinking has a
  budget of its own, after which the smallest failure so far stands;
- each schedule runs at most once (Hypothesis asks again for the same one,
  e.g. to report it): the outcome is remembered by the schedule's key, so
  Hypothesis sees a deterministic test and never calls it flaky; whether
  the system is flaky is decided by the reruns afterwards
  (chaos.explore.confirm);
- every run is reported as it ends (``on_trial``): the progress display and
  the shrink path are made from that.
"""

from __future__ import annotations

import time
import unittest
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chaos.explore.base import Base
from chaos.explore.schedule import Limits, Schedule
from chaos.explore.space import FaultSpace
from chaos.explore.trial import Outcome, RunOne, Trial


class ScheduleFailed(Exception):
    """Raised to Hypothesis for a schedule whose run broke an invariant (always from the same line)."""


class StopSearch(BaseException):
    """The budget is spent or a signal came: ends Hypothesis at once (it passes a BaseException through).

    Each failure Hypothesis found was saved to its database when found, and the
    smallest so far is kept here, so nothing found is lost.
    """


@dataclass(frozen=True)
class Ran:
    """One run of the search, in order: ``phase`` is search (looking) or shrink (after the first failure)."""

    n: int
    phase: str
    trial: Trial
    drawn: str = "hypothesis"  # who chose the schedule: hypothesis | small-first | stored (a failure kept earlier)


@dataclass
class SearchResult:
    seed: int
    ran: list[Ran] = field(default_factory=list)
    smallest: Trial | None = None  # the smallest failing schedule Hypothesis ended with
    interrupted: bool = False
    stopped: str = ""  # why the search ended

    @property
    def shrink_path(self) -> list[Ran]:
        """The first failure and every run after it (each smaller candidate Hypothesis tried)."""
        first = next((i for i, r in enumerate(self.ran) if r.trial.outcome is Outcome.FAILED), None)
        return [] if first is None else self.ran[first:]


Clock = Callable[[], float]


def search(base: Base, space: FaultSpace, limits: Limits, run_one: RunOne, seed: int, budget_s: float,
           shrink_budget_s: float, database: Path | None, on_trial: Callable[[Ran], None] = lambda r: None,
           interrupted: Callable[[], bool] = lambda: False, clock: Clock = time.monotonic,
           result: SearchResult | None = None, small_first_share: float = 0.5) -> SearchResult:
    """Explore ``space`` for ``budget_s`` seconds of runs (then shrink a failure for ``shrink_budget_s``).

    In order: the failures stored in ``database`` (Hypothesis's, then the small-first pass's); the small-first
    pass (chaos.explore.systematic) for at most ``small_first_share`` of the budget; Hypothesis's generation
    for the rest. ``result`` (filled in as the runs end) lets a caller show it while the search goes on.
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.database import DirectoryBasedExampleDatabase
    from hypothesis.errors import HypothesisException

    from chaos.explore import systematic
    from chaos.explore.strategy import schedules

    result = result if result is not None else SearchResult(seed)
    seen: dict[str, Trial] = {}
    began = clock()
    search_ends = began + budget_s
    shrink_ends: list[float] = []  # set at the first failure

    def attempt(schedule: Schedule, drawn: str) -> Trial:
        """The schedule's one run (remembered by its key); StopSearch when interrupted or out of budget."""
        key = schedule.key()
        trial = seen.get(key)
        if trial is None:
            if result.interrupted or interrupted():
                result.interrupted = True
                raise StopSearch("interrupted")
            now = clock()
            if not shrink_ends and now >= search_ends:
                raise StopSearch("budget spent, no failure")
            if shrink_ends and now >= shrink_ends[0]:
                raise StopSearch("failure found; shrink budget spent")
            trial = seen[key] = run_one(base, schedule, seed)
            ran = Ran(len(result.ran) + 1, "shrink" if shrink_ends else "search", trial, drawn)
            result.ran.append(ran)
            if trial.outcome is Outcome.FAILED:
                result.smallest = trial  # the first failure, or a smaller one (a shrink only tries smaller ones)
            on_trial(ran)  # after: the display's "best failure" is this one
            if trial.outcome is Outcome.INTERRUPTED:
                result.interrupted = True
            if trial.outcome is Outcome.FAILED and not shrink_ends:
                shrink_ends.append(clock() + shrink_budget_s)
        if trial.outcome is Outcome.INTERRUPTED:
            raise StopSearch("interrupted")
        return trial

    def body(schedule: Schedule) -> None:
        trial = attempt(schedule, "hypothesis")
        if trial.outcome is Outcome.FAILED:
            result.smallest = trial  # Hypothesis only tries smaller ones after a failure: the last is the smallest
            raise ScheduleFailed(schedule.key())

    def hypothesis(phases: list[Phase]) -> None:
        test = given(schedules(space, limits))(body)
        # The seed first: hypothesis.seed() turns the database off in the settings it leaves, and ours replace them.
        test = hypothesis_seed(seed)(test)
        test = settings(
            max_examples=100_000,  # never the limit: the budget is
            deadline=None,
            derandomize=False,
            database=DirectoryBasedExampleDatabase(str(database)) if database is not None else None,
            phases=phases,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )(test)
        try:
            test()
        except unittest.SkipTest:  # nothing stored to replay: Hypothesis "was told to run no test cases"
            pass

    def shrink_small_first(found: Trial) -> None:
        """Greedy: the first smaller candidate that still fails replaces the failure, until none does (each fault
        alone is tried once, at the times the pass ran them: a later start only moves a fault earlier)."""
        redundant = dict(space.redundant)
        smaller, alone = True, True
        while smaller:
            smaller = False
            candidates = systematic.smaller(found.schedule, limits, redundant, alone)
            alone = False
            for candidate in candidates:
                trial = attempt(candidate, "small-first")
                if trial.outcome is Outcome.FAILED:
                    found = result.smallest = trial
                    smaller = True
                    break

    def small_first() -> str | None:
        """The stored failures of this pass, then the pass itself: why the search ended, or None to go on."""
        ends = began + budget_s * small_first_share
        stored = systematic.stored(database, space)
        passes = [(s, "stored") for s in stored]
        if small_first_share > 0:
            passes += [(s, "small-first") for s in systematic.schedules(space, limits, seed)]
        for schedule, source in passes:
            if source == "small-first" and clock() >= ends and schedule.key() not in seen:
                break
            trial = attempt(schedule, source)
            if trial.outcome is Outcome.FAILED:
                result.smallest = trial
                try:
                    shrink_small_first(trial)
                finally:
                    systematic.store(database, result.smallest.schedule)
                return "a stored failure replayed and shrunk" if source == "stored" else "failure found by the small-first pass and shrunk"
        return None

    try:
        hypothesis([Phase.explicit, Phase.reuse, Phase.shrink])  # Hypothesis's stored failures first
        result.stopped = small_first() or ""
        if not result.stopped:
            hypothesis([Phase.generate, Phase.shrink])
            result.stopped = "every schedule of the space ran"
    except StopSearch as stop:
        result.stopped = str(stop)
    except ScheduleFailed:
        result.stopped = "interrupted while shrinking" if result.interrupted else "failure found and shrunk"
    except HypothesisException as err:  # e.g. Unsatisfiable: no schedule could be drawn
        result.stopped = "interrupted" if result.interrupted else f"no schedule ran ({type(err).__name__})"
    if interrupted():  # a signal after the last run (a failure with nothing smaller to try): no reruns follow
        result.interrupted = True
    return result
