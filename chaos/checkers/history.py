"""The per-listener history checker: what every listener heard, checked after the fact.

Jepsen's idea applied to a stream: while the run goes on, each listener keeps
a compact history of what it received (per connection and generation of the
stream: sequence range, receive times, duplicates, reorders, its largest gap;
connection events). Afterwards this pure function reads those histories
(summed over the load's instances) and reports, per room:

- listeners that never heard the relaunched room (for each relaunch);
- each listener's largest gap (the max, the p99 over listeners, the worst);
- duplicated frames and frames out of order;
- split brain: a frame of an older generation received after a newer one;
- the fraction of listeners back within N seconds of each relaunch.

Input format (per load instance; wall-clock seconds)::

    {"instance": "crowd-1", "now": 1764470000.1, "truncated_listeners": 0,
     "listeners": [{"id": "crowd-1/17", "room": "launch", "joined_at": ..., "active": true,
                    "segments": [{"gen": 0, "edge": "edge-1", "first_seq": 0, "last_seq": 120,
                                  "first_t": ..., "last_t": ..., "frames": 121, "dups": 0,
                                  "reorders": 0, "max_gap_s": 0.12}],
                    "events": [{"t": ..., "kind": "close", "code": 4004, "reason": "moved"}],
                    "truncated": false}]}

Relaunches come from the system's own record (``[{generation, completed_at,
failed_at, reason, edge}]``, ``generation`` being the one the relaunch
produced) or, when it has none, are inferred: a generation's relaunch is
when the first listener heard it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_BACK_WITHIN_S = 10.0
SHOWN = 10  # listener ids listed per finding (the counts are always complete)


@dataclass(frozen=True)
class Relaunch:
    generation: int
    at: float  # wall seconds: the relaunch (completed), or the first listener hearing it when inferred
    failed_at: float | None = None
    reason: str | None = None
    inferred: bool = False


@dataclass(frozen=True)
class SplitBrain:
    listener: str
    t: float  # when the older generation's frame came in
    generation: int  # the older generation heard
    after: int  # the newer generation heard before it
    edge: str | None = None


@dataclass
class Return:
    """How the listeners came back after one relaunch."""

    generation: int
    at: float
    reason: str | None
    inferred: bool
    listeners: int  # heard an older generation and stayed (or gave up): those who should come back
    never_count: int  # of them, how many never heard this generation or a newer one
    never: list[str]  # the first SHOWN of those (the journal stays small with thousands of listeners)
    back_within: dict[str, float | None]  # "10" -> fraction back within 10 s of the relaunch
    back_s_p50: float | None  # seconds from the relaunch to the first frame of the new generation
    back_s_max: float | None


@dataclass
class RoomHistory:
    room: str
    listeners: int
    active: int
    gave_up: int
    truncated: int  # listeners whose history was capped (oldest merged or dropped)
    dropped: int  # listeners the instances dropped entirely (truncated_listeners)
    never_heard_relaunch: list[str]  # listeners that never heard the room's last relaunch
    never_heard_count: int
    max_gap_s: float | None
    max_gap_p99_s: float | None
    max_gap_p50_s: float | None
    worst_gaps: list[tuple[str, float]]
    duplicates: int
    duplicate_listeners: int
    out_of_order: int
    out_of_order_listeners: int
    split_brain: list[SplitBrain]
    split_brain_count: int
    relaunches: list[Return]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Listener:
    id: str
    active: bool
    gave_up_t: float | None
    joined_at: float | None
    segments: list[Mapping[str, Any]] = field(default_factory=list)
    truncated: bool = False


def nearest_rank(values: list[float], q: float) -> float | None:
    """The q-quantile by nearest rank (one of the values, never an interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def merge(documents: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], float | None, int]:
    """The listeners of every instance, the latest ``now``, and how many listeners instances dropped."""
    listeners: list[Mapping[str, Any]] = []
    now: float | None = None
    dropped = 0
    for doc in documents:
        listeners.extend(doc.get("listeners") or [])
        stamp = _number(doc.get("now"))
        if stamp is not None:
            now = stamp if now is None else max(now, stamp)
        dropped += int(doc.get("truncated_listeners") or 0)
    return listeners, now, dropped


def _listener(raw: Mapping[str, Any]) -> _Listener:
    events = raw.get("events") or []
    gave_up = [float(e["t"]) for e in events if e.get("kind") == "gave_up" and _number(e.get("t")) is not None]
    return _Listener(
        id=str(raw.get("id")), active=bool(raw.get("active")), gave_up_t=min(gave_up) if gave_up else None,
        joined_at=_number(raw.get("joined_at")), segments=list(raw.get("segments") or []),
        truncated=bool(raw.get("truncated")),
    )


def _largest_gap(listener: _Listener, now: float | None) -> float | None:
    """Largest time without a frame: inside a segment, between segments, and the silence at the end
    (until now for a listener still there, until it gave up for one that did)."""
    gaps: list[float] = []
    last_t: float | None = None
    for seg in listener.segments:
        inner = _number(seg.get("max_gap_s"))
        if inner is not None:
            gaps.append(inner)
        first = _number(seg.get("first_t"))
        if last_t is not None and first is not None:
            gaps.append(max(0.0, first - last_t))
        end = _number(seg.get("last_t"))
        if end is not None:
            last_t = end if last_t is None else max(last_t, end)
    until = listener.gave_up_t if listener.gave_up_t is not None else (now if listener.active else None)
    start = last_t if last_t is not None else listener.joined_at
    if until is not None and start is not None:
        gaps.append(max(0.0, until - start))
    return max(gaps) if gaps else None


def _split_brain(listener: _Listener) -> list[SplitBrain]:
    found: list[SplitBrain] = []
    newest: int | None = None
    for seg in listener.segments:
        gen = seg.get("gen")
        if not isinstance(gen, int):
            continue
        if newest is not None and gen < newest:
            found.append(SplitBrain(listener.id, float(seg.get("first_t") or 0.0), gen, newest, seg.get("edge")))
        newest = gen if newest is None else max(newest, gen)
    return found


def relaunches_of(records: Iterable[Mapping[str, Any]] | None, listeners: list[_Listener]) -> list[Relaunch]:
    """The system's relaunch records, or (without any) relaunches inferred from the generations heard."""
    if records is not None:
        out = []
        for r in records:
            gen, at = r.get("generation"), _number(r.get("completed_at")) or _number(r.get("detected_at"))
            if isinstance(gen, int) and at is not None:
                out.append(Relaunch(gen, at, _number(r.get("failed_at")), r.get("reason"), False))
        return sorted(out, key=lambda x: x.generation)
    first_heard: dict[int, float] = {}
    for listener in listeners:
        for seg in listener.segments:
            gen, first = seg.get("gen"), _number(seg.get("first_t"))
            if isinstance(gen, int) and first is not None:
                first_heard[gen] = min(first, first_heard.get(gen, first))
    gens = sorted(first_heard)
    return [Relaunch(g, first_heard[g], inferred=True) for g in gens[1:]]


def _return(relaunch: Relaunch, listeners: list[_Listener], back_within: list[float]) -> Return:
    population: list[_Listener] = []
    back_after: list[float | None] = []
    for listener in listeners:
        heard = [s for s in listener.segments if isinstance(s.get("gen"), int)]
        if not any(s["gen"] < relaunch.generation for s in heard):
            continue  # was not on the room before this relaunch
        if not listener.active and listener.gave_up_t is None:
            continue  # left on its own (drained): nobody to bring back
        population.append(listener)
        firsts = [_number(s.get("first_t")) for s in heard if s["gen"] >= relaunch.generation]
        known = [f for f in firsts if f is not None]
        back_after.append(max(0.0, min(known) - relaunch.at) if known else None)
    never = [listener.id for listener, took in zip(population, back_after) if took is None]
    fractions: dict[str, float | None] = {}
    for seconds in back_within:
        key = f"{seconds:g}"
        fractions[key] = (sum(1 for took in back_after if took is not None and took <= seconds) / len(population)
                          if population else None)
    times = [took for took in back_after if took is not None]
    return Return(relaunch.generation, relaunch.at, relaunch.reason, relaunch.inferred, len(population), len(never),
                  never[:SHOWN], fractions, nearest_rank(times, 0.5), max(times) if times else None)


def check_room(room: str, raw_listeners: list[Mapping[str, Any]], now: float | None, dropped: int = 0,
               relaunch_records: Iterable[Mapping[str, Any]] | None = None,
               back_within: Iterable[float] = (DEFAULT_BACK_WITHIN_S,)) -> RoomHistory:
    """Every finding for one room, from the listeners' histories (pure: no I/O, no clock)."""
    listeners = [_listener(raw) for raw in raw_listeners if raw.get("room") == room]
    windows = sorted({float(s) for s in back_within})
    relaunches = relaunches_of(relaunch_records, listeners)
    returns = [_return(r, listeners, windows) for r in relaunches]
    gaps = {listener.id: gap for listener in listeners if (gap := _largest_gap(listener, now)) is not None}
    split = [finding for listener in listeners for finding in _split_brain(listener)]
    dups = {listener.id: sum(int(s.get("dups") or 0) for s in listener.segments) for listener in listeners}
    reorders = {listener.id: sum(int(s.get("reorders") or 0) for s in listener.segments) for listener in listeners}
    never, never_count = (returns[-1].never, returns[-1].never_count) if returns else ([], 0)
    worst = sorted(gaps.items(), key=lambda kv: (-kv[1], kv[0]))[:SHOWN]
    return RoomHistory(
        room=room, listeners=len(listeners), active=sum(1 for x in listeners if x.active),
        gave_up=sum(1 for x in listeners if x.gave_up_t is not None),
        truncated=sum(1 for x in listeners if x.truncated), dropped=dropped,
        never_heard_relaunch=never, never_heard_count=never_count,
        max_gap_s=max(gaps.values()) if gaps else None, max_gap_p99_s=nearest_rank(list(gaps.values()), 0.99),
        max_gap_p50_s=nearest_rank(list(gaps.values()), 0.5), worst_gaps=worst,
        duplicates=sum(dups.values()), duplicate_listeners=sum(1 for v in dups.values() if v),
        out_of_order=sum(reorders.values()), out_of_order_listeners=sum(1 for v in reorders.values() if v),
        split_brain=split[:SHOWN], split_brain_count=len(split), relaunches=returns,
    )


def check(documents: Iterable[Mapping[str, Any]], relaunches: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
          rooms: Iterable[str] | None = None, back_within: Iterable[float] = (DEFAULT_BACK_WITHIN_S,)) -> dict[str, RoomHistory]:
    """Findings per room over the histories of every load instance (``documents``).

    ``relaunches``: the system's relaunch records per room (absent room: inferred
    from the generations heard). ``rooms``: which rooms (default: every room heard of).
    """
    listeners, now, dropped = merge(documents)
    wanted = sorted(set(rooms) if rooms is not None else {str(x.get("room")) for x in listeners})
    back = list(back_within)
    return {
        room: check_room(room, listeners, now, dropped, (relaunches or {}).get(room), back)
        for room in wanted
    }
