"""The progress of an exploration: examples tried, faults injected, time left, the best failure so far.

Two views of the same calls: ``LivePanel``, a rich panel that a terminal
watches (time left ticks between runs, the shrink path grows as it is
walked), and ``Lines``, one line per run, for CI logs and pipes, where the
output is read afterwards. ``for_terminal`` picks one.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from typing import Any, TextIO

from chaos.explore.search import Ran
from chaos.explore.session import ExploreReport
from chaos.explore.trial import Outcome, Trial

MARK = {Outcome.PASSED: "passed", Outcome.FAILED: "FAILED", Outcome.UNSETTLED: "unsettled",
        Outcome.ERRORED: "errored", Outcome.INTERRUPTED: "interrupted"}


def _progress(report: ExploreReport, now: float) -> tuple[list[Ran], int, int, float, Trial | None]:
    """What both views show: the runs, how many failed, faults injected, search time left, the best
    failure so far (Hypothesis's smallest once it has one, before that the smallest failure seen)."""
    search = report.search
    ran = search.ran if search is not None else []
    failures = [r.trial for r in ran if r.trial.outcome is Outcome.FAILED]
    best = search.smallest if search is not None else None
    if best is None:
        best = min(failures, key=lambda t: (len(t.schedule.faults), t.schedule.describe()), default=None)
    injected = sum(len(r.trial.schedule.faults) for r in ran)
    return ran, len(failures), injected, max(0.0, report.budget_s - (now - report.started)), best


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
        runs, _, injected, left, smallest = _progress(report, time.monotonic())
        best = smallest.schedule.describe() if smallest is not None else "none"
        t = ran.trial
        self._say(f"[{ran.n:>3}] {ran.phase:<6} {MARK[t.outcome]:<11} {t.schedule.describe()}  ({t.seconds:.0f}s)")
        if t.outcome is not Outcome.PASSED:
            self._say(f"       {t.reason}")
        self._say(f"       examples {len(runs)}, faults injected {injected}, search time left {left:.0f}s, "
                  f"best failure: {best}")

    def rerun(self, n: int, trial: Trial, report: ExploreReport) -> None:
        self._say(f"rerun {n}: {MARK[trial.outcome]} ({trial.seconds:.0f}s) {trial.reason if trial.outcome is not Outcome.PASSED else ''}")

    def note(self, line: str) -> None:
        self._say(f"  note: {line}")


class LivePanel:
    """A rich Live panel: what is explored, the counts, time left, the best failure, recent runs, the shrink path."""

    RECENT = 8

    def __init__(self, console: Any = None, clock: Any = time.monotonic) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.clock = clock
        self.report: ExploreReport | None = None
        self.recent: deque[str] = deque(maxlen=self.RECENT)
        self.reruns: list[str] = []
        self.notes: list[str] = []
        self.current_since: float | None = None  # when the run under way began
        self._exits = contextlib.ExitStack()

    # --- the Display protocol ----------------------------------------------------------

    def started(self, report: ExploreReport) -> None:
        self.report = report
        self.current_since = self.clock()

    def ran(self, ran: Ran, report: ExploreReport) -> None:
        self.report = report
        t = ran.trial
        why = "" if t.outcome is Outcome.PASSED else f" - {t.reason}"
        self.recent.append(f"{ran.n:>3} {ran.phase:<6} {MARK[t.outcome]:<11} {t.schedule.describe()} ({t.seconds:.0f}s){why}")
        self.current_since = self.clock()

    def rerun(self, n: int, trial: Trial, report: ExploreReport) -> None:
        self.report = report
        self.reruns.append(f"rerun {n}: {MARK[trial.outcome]} ({trial.seconds:.0f}s)")
        self.current_since = self.clock()

    def note(self, line: str) -> None:
        self.notes.append(line)

    # --- what is drawn -----------------------------------------------------------------

    def counts(self) -> dict[str, str]:
        """The panel's figures, as text (tests read them)."""
        report = self.report
        if report is None:
            return {}
        ran, failed, injected, left, best = _progress(report, self.clock())
        phase = ran[-1].phase if ran else "search"
        if self.reruns:
            phase = "rerun"
        return {
            "examples tried": f"{len(ran)} ({failed} failed)",
            "faults injected": str(injected),
            "time left": f"{left:.0f}s of {report.budget_s:g}s",
            "phase": phase + (f", run under way for {self.clock() - self.current_since:.0f}s"
                              if self.current_since is not None else ""),
            "best failure": best.schedule.describe() if best is not None else "none yet",
        }

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        report = self.report
        if report is None:
            return Panel("explore: starting")
        head = (f"[b]explore[/b] {report.base} - seed {report.seed} - {len(report.space.atoms)} faults in the space, "
                f"up to {report.limits.max_faults} per schedule\njournal: {report.journal}")
        figures = Table(show_header=False, expand=True)
        figures.add_column("what", style="bold")
        figures.add_column("value")
        for what, value in self.counts().items():
            figures.add_row(what, value, style="red" if what == "best failure" and value != "none yet" else None)
        parts: list[Any] = [Panel(head), figures, Panel("\n".join(self.recent) or "-", title="recent runs")]
        search = report.search
        if search is not None and search.shrink_path:
            path = [f"{r.n:>3}. {MARK[r.trial.outcome]:<11} {r.trial.schedule.describe()}" for r in search.shrink_path]
            parts.append(Panel("\n".join(path[-self.RECENT:]), title="shrink path (FAILED = still fails)"))
        if self.reruns or self.notes:
            parts.append(Panel("\n".join([*self.reruns, *(f"note: {n}" for n in self.notes)]), title="reruns and notes"))
        return Group(*parts)

    def __enter__(self) -> LivePanel:
        from rich.live import Live

        self._exits.enter_context(Live(get_renderable=self.render, console=self.console, refresh_per_second=2,
                                       transient=False))
        return self

    def __exit__(self, *exc: object) -> None:
        self._exits.close()


@contextlib.contextmanager
def for_terminal(out: TextIO) -> Any:
    """The live panel on a terminal, lines elsewhere (a CI log, a pipe)."""
    if out.isatty():
        with LivePanel() as panel:
            yield panel
    else:
        yield Lines(out)


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
