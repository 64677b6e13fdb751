"""Why a run did not pass, as plain text: for pytest failures and CI logs.

Names the failed assertion, what it expected and what it observed, then
the timeline around it: the events and the probe samples of the seconds
before and after.
"""

from __future__ import annotations

from typing import Any

from chaos.report.data import event_text
from chaos.run.checks import format_value

AROUND_S = 6.0


def _failure_time(journal: dict[str, Any], failed: dict[str, Any] | None) -> float:
    if failed is not None:
        observed = failed.get("observed") or []
        return float(observed[-1][0]) if observed else float(failed.get("t", 0.0))
    for event in journal.get("events", []):
        if event.get("kind") in ("abort_triggered", "run_error"):
            return float(event.get("t", 0.0))
    return float(journal.get("duration_s") or 0.0)


def _samples(journal: dict[str, Any], key: str, start: float, end: float, most: int = 16) -> str:
    """The samples in the window where the value changed (plus the first and the last)."""
    points = [(t, v) for t, v in journal.get("series", {}).get(key, []) if start <= t <= end]
    shown = [p for i, p in enumerate(points) if i == 0 or i == len(points) - 1 or p[1] != points[i - 1][1]]
    if len(shown) > most:
        shown = shown[: most // 2] + shown[-(most // 2):]
    return "  ".join(f"{t:.1f}s={format_value(v)}" for t, v in shown)


def explain(journal: dict[str, Any], report: str | None = None, around: float = AROUND_S) -> str:
    verdict = str(journal.get("verdict", "?")).upper()
    lines = [f"{verdict}: {journal.get('reason', '')}"]
    lines.append(f"experiment {journal.get('file')} (seed {journal.get('seed')}, backend {journal.get('backend')}, run {journal.get('run_id')})")
    failed = [a for a in journal.get("assertions", []) if not a.get("ok")]
    for a in failed:
        observed = a.get("observed") or []
        last = f"{format_value(observed[-1][1])} at t={float(observed[-1][0]):.2f}s" if observed else "no sample"
        lines += [
            f"failed assertion {a.get('check')} ({str(a.get('phase', '')).replace('_', ' ')}, {a.get('mode')}): probe {a.get('probe')}",
            f"  expected: {a.get('expect')}",
            f"  observed: {last}",
        ]
        if a.get("outcome") == "not_disturbed":
            lines.append("  outcome: not disturbed (the probe never failed after the fault: nothing recovered, no recovery time)")
        lines.append(f"  {a.get('message')}")
    found = (journal.get("history") or {}).get("report")
    if found and any(a.get("phase") == "history" for a in failed):
        p99 = found.get("max_gap_p99_s")
        lines.append(
            f"listener histories of {found['room']}: {found['listeners']} listeners, "
            f"{found['never_heard_count']} never heard the relaunched room, largest gap p99 "
            f"{'none' if p99 is None else f'{p99:.2f}s'}, {found['split_brain_count']} split brain, "
            f"{found['duplicates']} duplicates, {found['out_of_order']} out of order")
    odd = [r for r in journal.get("relaunches") or [] if r.get("unexpected")]
    if odd:
        shown = ", ".join(f"generation {r.get('generation')} ({r.get('reason')}, failure began at t={r.get('failed_t')}s)" for r in odd)
        lines.append(f"unexpected relaunches (no fault active when their failure began): {len(odd)}: {shown}")
    first = failed[0] if failed else None
    t = _failure_time(journal, first)
    start, end = t - around, t + around
    lines.append(f"timeline around t={t:.2f}s:")
    for event in journal.get("events", []):
        et = float(event.get("t", 0.0))
        if start <= et <= end or event.get("kind") in ("fault_injected", "abort_triggered", "run_error"):
            marker = ">>" if first is not None and event.get("kind") == "check_result" and event.get("check") == first.get("check") and not event.get("ok") else "  "
            lines.append(f"  {marker}{et:8.2f}s  {event_text(event)}")
    keys = [first["probe"]] if first else []
    keys = [k for k in journal.get("series", {}) if any(k == p or k.startswith(p + "{") for p in keys)] or list(journal.get("series", {}))[:3]
    for key in keys:
        shown = _samples(journal, key, start, end)
        if shown:
            lines.append(f"  samples {key}: {shown}")
    if journal.get("probe_errors"):
        for key, err in journal["probe_errors"].items():
            lines.append(f"  probe {key} unreadable: {err}")
    lines.append(f"journal: {journal.get('_path', '?')}")
    if report:
        lines.append(f"report: {report}")
    return "\n".join(lines)
