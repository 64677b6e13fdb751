"""What the operator sees: a live dashboard on a terminal, plain timestamped lines otherwise.

Both are subscribers of the run's event stream; the probe values come from
the runner's sampler (the key probes and every probe the experiment judges).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import deque
from typing import Any, TextIO

from chaos.gameday.events import Halted, OperatorNote, StepConfirmed, StepWaiting
from chaos.report.keyprobes import base_name
from chaos.run import events as ev
from chaos.run.progress import line_for


def latest_values(runner: Any) -> list[tuple[str, Any, float]]:
    """(probe key, latest value, its time) of every sampled probe, key probes first."""
    sampler = getattr(runner, "sampler", None)
    if sampler is None:
        return []
    with sampler.series.lock:
        items = [(k, pts[-1][1], pts[-1][0]) for k, pts in sampler.series.data.items() if pts]
    first = ("crowd.connected", "crowd.join_latency_p95", "crowd.frame_gap_p99", "room.state", "room.relaunches")
    return sorted(items, key=lambda kv: (base_name(kv[0]) not in first, kv[0]))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)


def extra_line(event: ev.Event) -> str | None:
    match event:
        case OperatorNote():
            return f"note: {event.message}"
        case StepWaiting():
            return f">> next step {event.step}: {event.description} - press Enter to run it (h halts, type a note)"
        case StepConfirmed(auto=False):
            return f"step {event.step} confirmed after {event.waited_s:.1f}s"
        case Halted():
            active = ", ".join(event.active) or "none"
            return f"HALT ({event.by}): rolling back every fault now (active: {active})"
    return None


class Status:
    """What both views share: phase, step states, recent lines, halt summary."""

    def __init__(self, runner: Any, plan: list[tuple[str, str, str]]) -> None:
        self.runner = runner
        self.plan = plan  # (step id, at, description)
        self.state = {step: "pending" for step, _, _ in plan}
        self.phase = "starting"
        self.lines: deque[str] = deque(maxlen=8)
        self.notes: list[str] = []
        self.verdict: str | None = None
        self.halted = False
        self.rolled_back: list[str] = []
        self.t = 0.0

    def __call__(self, event: ev.Event) -> None:
        self.t = event.t
        match event:
            case ev.PhaseStarted():
                self.phase = event.phase.replace("_", " ")
            case StepWaiting():
                self.state[event.step] = "WAITING FOR YOU"
            case ev.FaultInjected():
                self.state[event.step] = "active: " + ", ".join(event.hit)
            case ev.FaultRolledBack():
                self.state[event.step] = "rolled back" if event.ok else f"ROLLBACK FAILED: {event.error}"
                if self.halted:
                    self.rolled_back.append(f"{event.step} ({', '.join(event.hit)}): " + ("rolled back" if event.ok else f"FAILED {event.error}"))
            case ev.CheckResult() if event.check in self.state:
                self.state[event.check] = "ok" if event.ok else "FAILED"
            case Halted():
                self.halted = True
            case ev.AbortTriggered() if event.reason.startswith("interrupted"):
                self.halted = True
            case OperatorNote():
                self.notes.append(f"t={event.t:.1f}s {event.message}")
            case ev.VerdictReached():
                self.verdict = event.verdict
        text = line_for(event) or extra_line(event)
        if text:
            self.lines.append(f"{event.t:7.2f}s  {text}")
        return None

    def halt_summary(self) -> str | None:
        if not self.halted:
            return None
        if not self.rolled_back:
            return "HALTED: no fault was active; nothing to roll back"
        return "HALTED: every fault rolled back at once: " + "; ".join(self.rolled_back)


class PlainView:
    """Timestamped lines (CI logs, pipes); probe values every few seconds."""

    def __init__(self, status: Status, out: TextIO | None = None, every: float = 2.0) -> None:
        self.status = status
        self.out = out or sys.stdout
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probes, name="probes", daemon=True)

    def __call__(self, event: ev.Event) -> None:
        text = line_for(event) or extra_line(event)
        if text:
            print(f"{event.t:7.2f}s  {text}", file=self.out, flush=True)

    def _probes(self) -> None:
        while not self._stop.wait(self.every):
            values = latest_values(self.status.runner)
            if values:
                shown = "  ".join(f"{k}={_fmt(v)}" for k, v, _ in values[:8])
                print(f"{self.status.runner.now():7.2f}s  probes: {shown}", file=self.out, flush=True)

    def __enter__(self) -> PlainView:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class LiveView:
    """A rich Live dashboard: plan with step states, key probes, recent events, notes, the prompt."""

    def __init__(self, status: Status, console_input: Any) -> None:
        from rich.console import Console as RichConsole

        self.status = status
        self.input = console_input
        self.console = RichConsole()
        self._exits = contextlib.ExitStack()  # the rich Live while the view is shown

    def __call__(self, event: ev.Event) -> None:
        pass  # the Live refreshes itself from the shared Status

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table

        s = self.status
        runner = s.runner
        head = f"[b]{runner.experiment.title}[/b]\nrun {runner.run_id} - phase [b]{s.phase}[/b] - t={runner.now():.1f}s"
        if s.verdict:
            head += f" - verdict [b]{s.verdict.upper()}[/b]"
        plan = Table(title="plan", expand=True)
        for col in ("step", "at", "what", "state"):
            plan.add_column(col)
        for step, at, what in s.plan:
            state = s.state.get(step, "")
            style = "bold yellow" if state.startswith("WAITING") else "red" if "FAIL" in state else None
            plan.add_row(step, at, what, state, style=style)
        probes = Table(title="key probes", expand=True)
        probes.add_column("probe")
        probes.add_column("value", justify="right")
        probes.add_column("at", justify="right")
        for key, value, t in latest_values(runner)[:8]:
            probes.add_row(key, _fmt(value), f"{t:.1f}s")
        typing = self.input.buffer
        prompt = (f"note> {typing}_  (Enter saves, Esc drops)" if typing is not None
                  else "Enter: next step   h: halt (rolls back every fault)   n or any key: write a note   Ctrl-C: halt")
        # what must never be cropped by a short terminal comes first: the prompt and a halt
        parts: list[Any] = [Panel(head), Panel(prompt, style="cyan")]
        if s.halted:
            parts.append(Panel(s.halt_summary() or "HALT: rolling back every fault...", style="bold red"))
        if s.notes:
            parts.append(Panel("\n".join(s.notes[-3:]), title="notes"))
        parts += [plan, probes, Panel("\n".join(s.lines) or "-", title="events")]
        return Group(*parts)

    def __enter__(self) -> LiveView:
        from rich.live import Live

        self._exits.enter_context(Live(get_renderable=self.render, console=self.console, refresh_per_second=4,
                                       transient=False))
        return self

    def __exit__(self, *exc: object) -> None:
        self._exits.close()
