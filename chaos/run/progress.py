"""A short readable timeline on the terminal, from the same event stream as the journal."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from chaos.run import events as ev
from chaos.run.checks import format_value


def line_for(event: ev.Event) -> str | None:
    """One line per event worth showing; None for the rest."""
    match event:
        case ev.RunStarted():
            return f"run {event.run_id}: {event.title} (seed {event.seed}, {_how(event)})"
        case ev.PhaseStarted(phase=phase) if phase in ("steady_state_before", "method", "recovery", "steady_state_after", "rollback"):
            return f"-- {phase.replace('_', ' ')}"
        case ev.StackReady():
            return f"stack {ev.stack_how(event.origin)}: {len(event.instances)} instances ({event.backend})"
        case ev.LoadChanged():
            return f"load {event.action}: " + ", ".join(f"{k}={v}" for k, v in event.params.items())
        case ev.FaultInjected():
            took = f" (took {event.took_s:.2f}s)" if event.took_s >= 0.5 else ""
            return f"fault {event.fault} [{event.step}] hit {', '.join(event.hit) or 'nothing'}{took}"
        case ev.FaultRolledBack():
            state = "rolled back" if event.ok else f"ROLLBACK FAILED: {event.error}"
            if event.reason == "nothing to undo":
                return f"fault {event.fault} [{event.step}] done (nothing to undo, {event.active_s:.2f}s)"
            return f"fault {event.fault} [{event.step}] {state} ({event.reason}, active {event.active_s:.2f}s)"
        case ev.CheckResult() if event.ok:
            took = f" after {event.recovery_s:.2f}s" if event.recovery_s is not None else ""
            last = f" (observed {format_value(event.observed[-1][1])})" if event.observed else ""
            return f"ok   {event.phase.replace('_', ' ')}: {event.check}: {event.expect}{took}{last}"
        case ev.CheckResult():
            return f"FAIL {event.phase.replace('_', ' ')}: {event.message}"
        case ev.AbortTriggered():
            return f"ABORT: {event.reason}"
        case ev.RunError():
            return f"ERROR in {event.phase}: {event.message}"
        case ev.RelaunchSeen():
            return f"relaunch #{event.count} seen ({event.probe}: {event.previous} -> {event.count})"
        case ev.Note():
            return event.message
        case ev.VerdictReached():
            extra = ""
            if event.as_declared is not None:
                extra = " (as declared: known weakness shown)" if event.as_declared else " (NOT as declared)"
            return f"verdict: {event.verdict.upper()}{extra} - {event.reason}"
    return None


def _how(event: ev.RunStarted) -> str:
    """How the run gets its stack, said once: ``attaching to a running stack``, ``backend local, bring up``."""
    if event.mode == "attach":  # the backend is the attached stack's, known once it is ready
        return "attaching to a running stack"
    return f"backend {event.backend}, {event.mode.replace('_', ' ')}"


class Progress:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr

    def __call__(self, event: ev.Event) -> None:
        text = line_for(event)
        if text is not None:
            print(f"{event.t:7.2f}s  {text}", file=self.out, flush=True)


def summary(journal: dict[str, Any]) -> list[str]:
    """Recovery times and failed assertions of a finished run, for the end of the output."""
    lines = []
    for result in journal.get("assertions", []):
        if result.get("recovery_s") is not None and result["ok"]:
            lines.append(f"recovered: {result['check']} after {result['recovery_s']:.2f}s (from {result['anchor']})")
    return lines
