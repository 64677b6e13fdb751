"""A short readable timeline on the terminal, from the same event stream as the journal."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from chaos.run import events as ev
from chaos.run.checks import format_value


def recovery_text(recovery_s: float | None, back_during_s: float | None, anchor: str | None,
                  name_anchor: bool = False) -> str:
    """How long a recovery took, as every view says it. Back while its fault still lasted, "0 s after the
    fault's end" would say little: then the time from the fault's injection is given instead."""
    if back_during_s is not None:
        return f"back {back_during_s:.2f}s after the fault began, before {anchor or 'its end'}"
    return f"after {recovery_s or 0.0:.2f}s" + (f" (from {anchor})" if name_anchor and anchor else "")


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
        case ev.CheckResult() if event.ok and event.outcome == "not_disturbed":
            return f"ok   {event.phase.replace('_', ' ')}: {event.check}: not disturbed (accepted; no recovery time)"
        case ev.CheckResult() if event.ok:
            took = f" {recovery_text(event.recovery_s, event.back_during_s, event.anchor)}" if event.recovery_s is not None else ""
            # the read that passed it: a later read (still in flight when it passed) may be unreadable
            passed = event.passed_with or (event.observed[-1] if event.observed else None)
            last = f" (observed {format_value(passed[1])})" if passed else ""
            return f"ok   {event.phase.replace('_', ' ')}: {event.check}: {event.expect}{took}{last}"
        case ev.CheckResult():
            return f"FAIL {event.phase.replace('_', ' ')}: {event.message}"
        case ev.HistoryChecked():
            back = "; ".join(f"gen {r['generation']}: " + ", ".join(f"{f if f is None else round(f, 3)} back within {k}s"
                                                                    for k, f in r["fractions"].items())
                             for r in event.back_within)
            p99 = "none" if event.max_gap_p99_s is None else f"{event.max_gap_p99_s:.2f}s"
            return (f"history of {event.room}: {event.listeners} listeners, largest gap p99 {p99}, "
                    f"{event.never_heard_relaunch} never heard the relaunch, {event.split_brain} split brain, "
                    f"{event.duplicates} duplicates, {event.out_of_order} out of order" + (f"; {back}" if back else ""))
        case ev.RelaunchesAudited() if event.unexpected is None:
            of = f" of {event.room}" if event.room else ""  # a stack without rooms (an imported Compose project)
            return f"relaunches{of}: not known ({'; '.join(event.errors) or 'the stack declares no relaunch records'})"
        case ev.RelaunchesAudited():
            odd = [r for r in event.relaunches if r.get("unexpected")]
            shown = ", ".join(f"gen {r['generation']} (failure at t={r['failed_t']})" for r in odd)
            return (f"relaunches of {event.room}: {len(event.relaunches)}, unexpected (no fault active): {event.unexpected}"
                    + (f": {shown}" if shown else ""))
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
            lines.append(f"recovered: {result['check']} "
                         f"{recovery_text(result['recovery_s'], result.get('back_during_s'), result.get('anchor'), name_anchor=True)}")
        elif result.get("outcome") == "not_disturbed":
            lines.append(f"not disturbed: {result['check']} (its probe never failed after the fault: no recovery time)")
    return lines
