"""One exploration from start to end: space, search, shrink, reruns, file, journal.

``explore()`` is the one entry point, for the command line and for tests
(``chaos.explore.explore(path, budget_s=60, backend="local")``). It returns
an ``ExploreReport``; what it finds is written as an experiment file and
everything it ran is in its journal (``<journal dir>/explore-<id>.json``,
rewritten after every run, so a killed exploration leaves what it had).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from chaos.explore.base import Base, load_base
from chaos.explore.confirm import Confirmation, confirm
from chaos.explore.schedule import Limits
from chaos.explore.search import Ran, SearchResult, search
from chaos.explore.space import FaultSpace, build_space
from chaos.explore.trial import RunOne, Trial


class Display(Protocol):
    """What the progress display is told (chaos.explore.display; tests collect it)."""

    def started(self, report: ExploreReport) -> None: ...
    def ran(self, ran: Ran, report: ExploreReport) -> None: ...
    def rerun(self, n: int, trial: Trial, report: ExploreReport) -> None: ...
    def note(self, line: str) -> None: ...


class Quiet:
    def started(self, report: ExploreReport) -> None: ...
    def ran(self, ran: Ran, report: ExploreReport) -> None: ...
    def rerun(self, n: int, trial: Trial, report: ExploreReport) -> None: ...
    def note(self, line: str) -> None: ...


@dataclass
class ExploreReport:
    id: str
    base: str
    seed: int
    budget_s: float
    space: FaultSpace
    limits: Limits
    database: str | None
    journal: Path
    started: float = field(default_factory=time.monotonic)
    search: SearchResult | None = None
    confirmation: Confirmation | None = None
    written: Path | None = None
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # the command line's narrowing of the space (for the replay line)

    @property
    def status(self) -> str:
        """found | flaky | unconfirmed | nothing | interrupted (nothing found before Ctrl-C)."""
        if self.search is None or self.search.smallest is None:
            return "interrupted" if self.search is not None and self.search.interrupted else "nothing"
        return self.confirmation.status if self.confirmation is not None else "unconfirmed"

    def to_json(self) -> dict[str, Any]:
        def trial(t: Trial) -> dict[str, Any]:
            return {"schedule": t.schedule.describe(), "method": t.schedule.method(), "outcome": t.outcome.value,
                    "reason": t.reason, "failed": list(t.failed), "journal": t.journal, "seconds": round(t.seconds, 2),
                    "reused_stack": t.reused}

        found = self.search.smallest if self.search is not None else None
        return {
            "explore_id": self.id, "base": self.base, "seed": self.seed, "budget_s": self.budget_s,
            "space": {"atoms": [a.label for a in self.space.atoms], "excluded": list(self.space.excluded)},
            "limits": vars(self.limits), "database": self.database, "status": self.status,
            "stopped": self.search.stopped if self.search else "",
            "runs": [{"n": r.n, "phase": r.phase, "drawn": r.drawn, **trial(r.trial)} for r in (self.search.ran if self.search else [])],
            "smallest": trial(found) if found else None,
            "reruns": ([trial(t) for t in self.confirmation.trials] if self.confirmation else []),
            "reruns_failed": self.confirmation.failed if self.confirmation else None,
            "written": str(self.written) if self.written else None,
            "notes": self.notes,
        }

    def save(self) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2, default=str), encoding="utf-8")
        tmp.replace(self.journal)


def database_dir(root: Path, base: Base, space: FaultSpace, limits: Limits) -> Path:
    """One example database per base file, fault space and limits: a replay draws from the same space."""
    digest = hashlib.sha256(json.dumps([str(base.path.resolve()), [a.label for a in space.atoms], vars(limits)],
                                       sort_keys=True).encode()).hexdigest()[:16]
    return root / digest


def explore(
    path: str | Path,
    budget_s: float,
    backend: str | None = None,
    seed: int | None = None,
    reruns: int = 3,
    out_dir: str | Path = "explored",
    shrink_budget_s: float | None = None,
    limits: Limits | None = None,
    small_first: float = 0.5,
    faults: list[str] | None = None,
    services: list[str] | None = None,
    links: list[str] | None = None,
    journal_dir: str | Path | None = None,
    database: str | Path | None = None,
    display: Display | None = None,
    run_one: RunOne | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ExploreReport:
    """Search the fault schedules of ``path``'s stack for one that breaks its invariants; see the module doc.

    ``small_first``: the share of the budget the small-first pass may take (chaos.explore.systematic; 0: none).
    ``run_one`` and ``clock`` replace the real stack and time (unit tests with a fake system).
    """
    from chaos.run.journal import default_dir
    from chaos.signals import INTERRUPTS

    if budget_s <= 0:
        from chaos.errors import UsageError

        raise UsageError("explore: the budget must be positive, e.g. --budget 10m")
    if not 0 <= small_first <= 1:
        from chaos.errors import UsageError

        raise UsageError(f"explore: --small-first is a share of the budget from 0 to 1, not {small_first:g}")
    if backend is None:
        from chaos.stack import default_backend

        backend = default_backend()
    shown = display or Quiet()
    limits = limits or Limits()
    base = load_base(path, backend)
    space = _space_for(base, faults, services, links)
    seed = seed if seed is not None else secrets.randbits(32)
    journals = Path(journal_dir) if journal_dir is not None else default_dir()
    db_root = Path(database) if database is not None else journals / "explore-db"
    db = database_dir(db_root, base, space, limits)
    run_id = f"explore-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    report = ExploreReport(run_id, str(path), seed, budget_s, space, limits, str(db), journals / f"{run_id}.json",
                           started=clock())  # on the search's own clock: the displays' time left follows it
    if base.dropped_steps:
        report.notes.append(f"the base's own method ({base.dropped_steps} step(s)) is replaced by each schedule")
    if space.excluded:
        report.notes.append(f"not faulted: {', '.join(space.excluded)} (name them with services to include them)")
    report.flags = _flags(backend, limits, faults, services, links, small_first)
    report.save()
    shown.started(report)
    for line in report.notes:
        shown.note(line)

    def interrupted() -> bool:
        return bool(INTERRUPTS.received)

    def ran(item: Ran) -> None:
        report.save()
        shown.ran(item, report)

    report.search = SearchResult(seed)
    with _trials(base, journals, run_one) as (run, rerun_fresh):
        found = search(base, space, limits, run, seed, budget_s, shrink_budget_s if shrink_budget_s is not None else budget_s,
                       db, on_trial=ran, interrupted=interrupted, clock=clock, result=report.search,
                       small_first_share=small_first)
        report.save()
        if found.smallest is not None and not found.interrupted:
            def rerun(n: int, trial: Trial) -> None:
                shown.rerun(n, trial, report)

            shown.note(f"rerunning the smallest failure {reruns} times, each on a fresh stack (as roomquake run does)")
            report.confirmation = confirm(base, found.smallest.schedule, rerun_fresh, seed, reruns, rerun, interrupted)
    if found.smallest is not None:
        report.written = _write(report, base, Path(out_dir))
    report.save()
    return report


def _flags(backend: str, limits: Limits, faults: list[str] | None, services: list[str] | None,
           links: list[str] | None, small_first: float = 0.5) -> list[str]:
    from chaos.experiment.durations import format_duration

    flags = [f"--backend {backend}", f"--max-faults {limits.max_faults}", f"--horizon {format_duration(limits.horizon)}",
             f"--min-for {format_duration(limits.min_for)}", f"--max-for {format_duration(limits.max_for)}"]
    flags += ["--total-loss"] if limits.total_loss else []
    flags += [f"--small-first {small_first:g}"] if small_first != 0.5 else []
    for name, values in (("faults", faults), ("services", services), ("links", links)):
        if values:
            flags.append(f"--{name} {','.join(values)}")
    return flags


def _space_for(base: Base, faults: list[str] | None, services: list[str] | None, links: list[str] | None) -> FaultSpace:
    """The fault space of the base's stack at its scale, with its room (the load's, else the stack file's)."""
    from chaos.experiment.stackcheck import stack_file
    from chaos.stack import load_stack

    spec = load_stack(stack_file(base.experiment.stack, base.path.parent)).spec
    start = spec.load.get("start")
    load = base.experiment.load
    room = load.room if load is not None and load.room else (start.params.get("room") if start is not None else None)
    return build_space(spec, base.backend, base.experiment.scale, faults, services, links,
                       str(room) if room is not None else None)


@contextmanager
def _trials(base: Base, journals: Path, run_one: RunOne | None) -> Iterator[tuple[RunOne, RunOne]]:
    """What runs the search's examples and what runs the reruns: the given ``run_one`` for both, else the real
    stack runner (StackTrials) for the session's length, the reruns each on a fresh stack."""
    if run_one is not None:
        yield run_one, run_one
        return
    from chaos.explore.trial import StackTrials

    with StackTrials(base, journals) as run:
        yield run, run.fresh


def _write(report: ExploreReport, base: Base, out_dir: Path) -> Path:
    from chaos.explore.writer import write

    assert report.search is not None and report.search.smallest is not None
    smallest = report.search.smallest
    shrinks = [r for r in report.search.shrink_path]
    how = [
        f"Found by roomquake explore {report.base} (seed {report.seed}, explore journal {report.journal}).",
        f"Status: {report.status}" + (f", {report.confirmation.summary()}" if report.confirmation else "")
        + f"; {len(report.search.ran)} runs, {len(shrinks)} on the shrink path.",
        f"Failed: {', '.join(smallest.failed) or smallest.reason}",
        f"Replay the search: roomquake explore {report.base} --seed {report.seed} --budget {round(report.budget_s)}s "
        + " ".join(report.flags),
    ]
    return write(base, smallest.schedule, report.seed, out_dir, how)
