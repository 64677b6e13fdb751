"""The progress of an exploration, one line per run (examples tried, faults injected, time left, best failure).

Lines rather than a live panel: an exploration runs for minutes to hours and
its output is read afterwards in CI logs as often as watched.
"""

from __future__ import annotations

import time
from typing import TextIO

from chaos.explore.search import Ran
from chaos.explore.session import ExploreReport
from chaos.explore.trial import Outcome, Trial

MARK = {Outcome.PASSED: "passed", Outcome.FAILED: "FAILED", Outcome.UNSETTLED: "unsettled",
        Outcome.ERRORED: "errored", Outcome.INTERRUPTED: "interrupted"}


class Lines:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def started(self, report: ExploreReport) -> None:
        self._say(f"explore {report.base}: {len(report.space.atoms)} faults in the space, up to "
                  f"{report.limits.max_faults} per schedule; seed {report.seed}; budget {report.budget_s:g}s")
        self._say(f"  journal: {report.journal}")

    def ran(self, ran: Ran, report: ExploreReport) -> None:
        search = report.search
        assert search is not None
        injected = sum(len(r.trial.schedule.faults) for r in search.ran)
        left = max(0.0, report.budget_s - (time.monotonic() - report.started))
        best = search.smallest.schedule.describe() if search.smallest is not None else "none"
        t = ran.trial
        self._say(f"[{ran.n:>3}] {ran.phase:<6} {MARK[t.outcome]:<11} {t.schedule.describe()}  ({t.seconds:.0f}s)")
        if t.outcome is not Outcome.PASSED:
            self._say(f"       {t.reason}")
        self._say(f"       examples {len(search.ran)}, faults injected {injected}, search time left {left:.0f}s, "
                  f"best failure: {best}")

    def rerun(self, n: int, trial: Trial, report: ExploreReport) -> None:
        self._say(f"rerun {n}: {MARK[trial.outcome]} ({trial.seconds:.0f}s) {trial.reason if trial.outcome is not Outcome.PASSED else ''}")

    def note(self, line: str) -> None:
        self._say(f"  note: {line}")


def summary(report: ExploreReport) -> list[str]:
    """What the command prints at the end: the shrink path, the reruns, the verdict and the file."""
    search = report.search
    lines: list[str] = []
    if search is not None and search.shrink_path:
        lines.append("shrink path (each run after the first failure; FAILED = still fails):")
        for r in search.shrink_path:
            lines.append(f"  {r.n:>3}. {MARK[r.trial.outcome]:<11} {r.trial.schedule.describe()}")
    status = report.status
    if status == "nothing":
        ran = len(search.ran) if search else 0
        lines.append(f"nothing found: {ran} schedules ran ({search.stopped if search else ''})")
    elif status == "interrupted":
        lines.append("interrupted: everything rolled back, nothing found so far")
    else:
        assert search is not None and search.smallest is not None
        confirmed = f" ({report.confirmation.summary()})" if report.confirmation else " (not rerun: interrupted)"
        lines.append(f"{status.upper()}{confirmed}: {search.smallest.schedule.describe()}")
        lines.append(f"  broke: {', '.join(search.smallest.failed) or search.smallest.reason}")
    if report.written is not None:
        lines.append(f"  written: {report.written} (roomquake run {report.written})")
    lines.append(f"  journal: {report.journal}")
    return lines
