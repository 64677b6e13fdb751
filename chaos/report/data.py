"""What a report shows, extracted from a journal (a plain dict): pure functions, no HTML."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from chaos.report.keyprobes import CHARTED, RELAUNCHES, base_name, numeric
from chaos.run.events import stack_how

Point = tuple[float, Any]


@dataclass
class Panel:
    title: str
    series: dict[str, list[tuple[float, float | None]]]  # key -> numeric points (None: unreadable)


@dataclass
class Strip:
    """A probe with text values (room.state, room.edge) drawn as labelled segments."""

    key: str
    segments: list[tuple[float, float, str]]  # start, end, value


@dataclass
class Window:
    label: str
    start: float
    end: float
    ok: bool = True  # its rollback succeeded


@dataclass
class Marker:
    t: float
    label: str


@dataclass
class ReportData:
    title: str
    verdict: str
    reason: str
    as_declared: bool | None
    duration: float  # chart end (run seconds)
    panels: list[Panel]
    strips: list[Strip]
    windows: list[Window]
    relaunches: list[Marker]
    phases: list[Marker]
    assertions: list[dict[str, Any]]
    environment: list[tuple[str, str]]
    notes: list[tuple[float, str]]
    events: list[tuple[float, str, str]]  # t, kind, text
    missing_roles: list[str] = field(default_factory=list)
    # any of the audio-room's charted roles sampled (False: a stack of another kind, or nothing sampled)
    audio_room: bool = False
    start: float = 0.0  # chart start: a second before the first sample (bring-up is not charted)
    history: dict[str, Any] | None = None  # journal["history"]: the listeners' histories, checked
    history_results: list[dict[str, Any]] = field(default_factory=list)  # the history assertions judged
    relaunch_audit: list[dict[str, Any]] | None = None  # attributed relaunch records (None: not known)
    unexpected_relaunches: int | None = None
    t0_wall: float | None = None  # wall time of run t=0 (turns wall stamps of histories into run seconds)


def _points(raw: list[list[Any]]) -> list[Point]:
    return [(float(p[0]), p[1]) for p in raw if isinstance(p, (list, tuple)) and len(p) == 2]


def _numeric_series(points: list[Point]) -> list[tuple[float, float | None]] | None:
    values = [numeric(v) for _, v in points]
    readable = [v for v, (_, raw) in zip(values, points) if raw is not None]
    if not points or any(v is None for v in readable):
        return None  # some value is not a number: a text probe
    return [(t, v) for (t, _), v in zip(points, values)]


def _strip(key: str, points: list[Point], end: float) -> Strip:
    segments: list[tuple[float, float, str]] = []
    for i, (t, value) in enumerate(points):
        text = "?" if value is None else str(value)
        nxt = points[i + 1][0] if i + 1 < len(points) else end
        if segments and segments[-1][2] == text:
            segments[-1] = (segments[-1][0], nxt, text)
        else:
            segments.append((t, nxt, text))
    return Strip(key, segments)


def relaunch_markers(series: dict[str, list[Point]]) -> list[Marker]:
    """Where a relaunch counter went up (the sample that first shows it)."""
    marks = []
    for key in RELAUNCHES.pick(series):
        last: float | None = None
        for t, value in series[key]:
            number = numeric(value)
            if number is None:
                continue
            if last is not None and number > last:
                marks.append(Marker(t, f"relaunch #{int(number)}"))
            last = number
    return sorted(marks, key=lambda mk: mk.t)


def fault_windows(journal: dict[str, Any], end: float) -> list[Window]:
    windows = []
    failed = {e["step"] for e in journal.get("events", []) if e.get("kind") == "fault_rolled_back" and not e.get("ok", True)}
    for fault in journal.get("faults", []):
        start = fault.get("injected_t")
        if start is None:
            continue
        stop = fault.get("rolled_back_t")
        hit = ", ".join(fault.get("hit") or [])
        label = f"{fault['step']}: {fault['fault']}" + (f" ({hit})" if hit else "")
        windows.append(Window(label, float(start), float(stop if stop is not None else end), fault["step"] not in failed))
    return windows


def _when(wall: Any) -> str:
    if not isinstance(wall, (int, float)):
        return "?"
    return dt.datetime.fromtimestamp(wall, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _stack_origin(journal: dict[str, Any]) -> str:
    origin = journal.get("stack_origin")
    if origin is None:  # journals from before stack_origin: the stack_ready event still says whether it attached
        ready: dict[str, Any] = next((e for e in journal.get("events", []) if e.get("kind") == "stack_ready"), {})
        origin = ready.get("origin")
        attached = bool(ready.get("attached"))
    else:
        attached = False
    return stack_how(origin, attached)


def environment(journal: dict[str, Any]) -> list[tuple[str, str]]:
    exp = journal.get("experiment") or {}
    images = journal.get("image_ids") or {}
    rows = [
        ("run id", str(journal.get("run_id", "?"))),
        ("experiment file", str(journal.get("file", "?"))),
        ("backend", str(journal.get("backend", "?"))),
        ("seed", str(journal.get("seed", "?"))),
        ("stack", f"{exp.get('stack', '?')} (run {journal.get('stack_run_id', '?')}, {_stack_origin(journal)})"),
        ("profile", str(exp.get("profile") or "default")),
        ("scale", ", ".join(f"{k}={v}" for k, v in (exp.get("scale") or {}).items()) or "as declared"),
        ("images", ", ".join(f"{k}={v}" for k, v in images.items()) or "none (local processes)"),
        ("started", _when(journal.get("started"))),
        ("duration", f"{float(journal.get('duration_s') or 0):.1f} s"),
        ("roomquake", f"{journal.get('roomquake', '?')} on Python {journal.get('python', '?')}, host {journal.get('host', '?')}"),
    ]
    if exp.get("env"):
        rows.insert(7, ("env overrides", "; ".join(f"{s}: {v}" for s, v in exp["env"].items())))
    return rows


def event_text(event: dict[str, Any]) -> str:
    """One line per journal event (a dict), for the report's event log and failure messages."""
    kind = str(event.get("kind", "?"))
    match kind:
        case "run_started":
            return f"run {event.get('run_id')} started (seed {event.get('seed')}, {event.get('backend')})"
        case "phase_started":
            return f"phase {str(event.get('phase', '')).replace('_', ' ')}"
        case "stack_ready":
            how = stack_how(event.get("origin"), bool(event.get("attached")))
            return f"stack {how}: {len(event.get('instances') or [])} instances ({event.get('backend')})"
        case "load_changed":
            return f"load {event.get('action')}: " + ", ".join(f"{k}={v}" for k, v in (event.get("params") or {}).items())
        case "fault_injected":
            return f"fault {event.get('fault')} [{event.get('step')}] hit {', '.join(event.get('hit') or []) or 'nothing'}"
        case "fault_rolled_back":
            state = "rolled back" if event.get("ok", True) else f"ROLLBACK FAILED: {event.get('error')}"
            return f"fault {event.get('fault')} [{event.get('step')}] {state} ({event.get('reason')})"
        case "check_result":
            return ("ok: " if event.get("ok") else "FAILED: ") + str(event.get("message"))
        case "abort_triggered":
            return f"abort: {event.get('reason')}"
        case "run_error":
            return f"error in {event.get('phase')}: {event.get('message')}"
        case "history_checked":
            p99 = event.get("max_gap_p99_s")
            return (f"history of {event.get('room')}: {event.get('listeners')} listeners, largest gap p99 "
                    f"{'none' if p99 is None else f'{p99:.2f}s'}, {event.get('never_heard_relaunch')} never heard the relaunch, "
                    f"{event.get('split_brain')} split brain")
        case "relaunches_audited":
            if event.get("unexpected") is None:
                return f"relaunches of {event.get('room')}: not known" if event.get("room") else "relaunches: not known"
            return f"relaunches of {event.get('room')}: {len(event.get('relaunches') or [])}, unexpected: {event.get('unexpected')}"
        case "verdict_reached":
            return f"verdict {str(event.get('verdict')).upper()}: {event.get('reason')}"
        case "operator_note":
            return f"note: {event.get('message')}"
        case "step_confirmed":
            return f"operator confirmed step {event.get('step')} (waited {event.get('waited_s', 0):.1f}s)"
        case "halted":
            return f"HALT by the operator ({event.get('by')}): rolling back every fault"
    if "message" in event:
        return str(event["message"])
    return kind.replace("_", " ")


def extract(journal: dict[str, Any]) -> ReportData:
    series = {k: _points(v) for k, v in (journal.get("series") or {}).items()}
    duration = float(journal.get("duration_s") or 0.0)
    end = max([duration, *[pts[-1][0] for pts in series.values() if pts]])
    numeric_keys = {k: s for k, pts in series.items() if (s := _numeric_series(pts)) is not None}
    panels, used, missing = [], set(), []
    for role in CHARTED:
        keys = role.pick(numeric_keys)
        if keys:
            panels.append(Panel(role.title, {k: numeric_keys[k] for k in keys}))
            used.update(keys)
        else:
            missing.append(role.title)
    audio_room = len(missing) < len(CHARTED)
    if not audio_room:
        # None of the audio-room's roles was sampled: a stack of another kind (an imported Compose
        # project), whose own series are charted below; naming the audio-room's would be noise.
        missing = []
    relaunch_keys = set(RELAUNCHES.pick(numeric_keys))
    for key in sorted(numeric_keys):
        if key not in used and key not in relaunch_keys:
            panels.append(Panel(base_name(key) if base_name(key) != key else key, {key: numeric_keys[key]}))
    strips = [_strip(k, pts, end) for k, pts in sorted(series.items()) if k not in numeric_keys and pts]
    events = journal.get("events") or []
    phases = [Marker(float(e["t"]), str(e["phase"]).replace("_", " ")) for e in events if e.get("kind") == "phase_started"]
    notes = [(float(e["t"]), str(e.get("message", ""))) for e in events if e.get("kind") == "operator_note"]
    firsts = [pts[0][0] for pts in series.values() if pts]
    firsts += [w.start for w in fault_windows(journal, end)]
    start = max(0.0, min(firsts) - 1.0) if firsts else 0.0
    title = (journal.get("experiment") or {}).get("title") or str(journal.get("file", "experiment"))
    return ReportData(
        title=title,
        verdict=str(journal.get("verdict", "unknown")),
        reason=str(journal.get("reason", "")),
        as_declared=journal.get("as_declared"),
        duration=end,
        panels=panels,
        strips=strips,
        windows=fault_windows(journal, end),
        relaunches=relaunch_markers(series),
        phases=phases,
        assertions=list(journal.get("assertions") or []),
        environment=environment(journal),
        notes=notes,
        events=[(float(e.get("t", 0.0)), str(e.get("kind", "?")), event_text(e)) for e in events],
        missing_roles=missing,
        audio_room=audio_room,
        start=start,
        history=journal.get("history") if isinstance(journal.get("history"), dict) else None,
        history_results=[a for a in journal.get("assertions") or [] if a.get("phase") == "history"],
        relaunch_audit=journal.get("relaunches") if isinstance(journal.get("relaunches"), list) else None,
        unexpected_relaunches=journal.get("unexpected_relaunches"),
        t0_wall=journal.get("t0_wall") if isinstance(journal.get("t0_wall"), (int, float)) else None,
    )
