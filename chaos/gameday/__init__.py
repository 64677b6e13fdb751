"""Game days: drive an experiment live, step by step, with notes and a halt.

``run_gameday(path, ...)``: bring the stack up (or attach to one), show the
plan, wait for the operator before each fault (unless ``auto``), show the
key probes live, take notes into the journal, halt on ``h`` or Ctrl-C with
every fault rolled back at once, and end with the HTML report.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from chaos.experiment import load_experiment
from chaos.experiment.durations import format_duration
from chaos.gameday.console import Console
from chaos.gameday.dashboard import LiveView, PlainView, Status
from chaos.gameday.runner import GameDayRunner, describe
from chaos.report import write_report
from chaos.report.keyprobes import with_key_probes
from chaos.run import RunOptions, RunResult
from chaos.run import timeline


@dataclass
class GameDayResult:
    run: RunResult
    report: Path
    halted: bool
    summary: str | None


def plan_rows(experiment: Any) -> list[tuple[str, str, str]]:
    return [(p.id, format_duration(p.start), describe(p.step)) for p in timeline.plan(experiment.method)]


def plan_text(experiment: Any, attach: str | None, backend: str | None) -> str:
    where = f"attach to stack {attach}" if attach else f"bring up {experiment.stack} ({backend or 'auto'} backend)"
    lines = [f"game day: {experiment.title}", f"  stack: {where}, scale {experiment.scale or 'as declared'}, profile {experiment.profile or 'default'}"]
    if experiment.load is not None:
        room = f"room {experiment.load.room}, " if experiment.load.room else ""  # none named: the stack file's
        lines.append(f"  load: {room}{experiment.load.listeners} listeners over {format_duration(experiment.load.ramp)}")
    lines += [f"  steady state: {c.label()}" for c in experiment.steady_state]
    lines += [f"  step {step:<20} at {at:>6}  {what}" for step, at, what in plan_rows(experiment)]
    lines += [f"  recovery: {c.label()}" for c in experiment.recovery]
    return "\n".join(lines)


def run_gameday(
    path: str | Path, *, backend: str | None = None, attach: str | None = None, auto: bool = False,
    profile: str | None = None, journal_dir: Path | None = None, report: Path | None = None,
    stdin: TextIO | None = None, out: TextIO | None = None, live: bool | None = None, seed: int | None = None,
) -> GameDayResult:
    experiment = load_experiment(path)
    if profile:
        experiment = experiment.model_copy(update={"profile": profile})
    experiment = with_key_probes(experiment, path)
    out = out or sys.stdout
    stdin = stdin or sys.stdin
    print(plan_text(experiment, attach, backend), file=out, flush=True)
    runner = GameDayRunner(experiment, path, RunOptions(backend=backend, attach=attach, seed=seed, journal_dir=journal_dir,
                                                       progress=False), auto=auto)
    status = Status(runner, [(s, a, w) for s, a, w in plan_rows(experiment) if any(
        p.id == s and p.is_fault for p in timeline.plan(experiment.method))])
    runner.bus.subscribe(status)
    console = Console(runner, stdin)
    use_live = out.isatty() and console.is_tty if live is None else live
    view: Any = LiveView(status, console) if use_live else PlainView(status, out)
    runner.bus.subscribe(view)
    with console.running(), view:
        result = runner.run()
    summary = status.halt_summary()
    path_out = write_report(result.journal, report or Path(result.journal).with_suffix(".html"))
    if summary:
        print(summary, file=out, flush=True)
    print(f"verdict: {result.verdict.value.upper()} - {result.reason}", file=out, flush=True)
    print(f"journal: {result.journal}", file=out, flush=True)
    print(f"report: {path_out}", file=out, flush=True)
    return GameDayResult(result, path_out, status.halted, summary)


__all__ = ["GameDayResult", "GameDayRunner", "plan_text", "run_gameday"]
