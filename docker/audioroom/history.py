"""One listener's compact history: what it heard, as runs of frames, and what happened to its connections.

What the crowd serves on ``GET /history`` (contract C1 in the project's
helper notes; docker/audioroom/README.md shows the JSON). A *segment* is one
run of frames of one generation on one connection, in receive order: first
and last sequence number and receive time, frame count, duplicates, late
(reordered) frames, largest gap between two frames. A frame of another
generation, or the first frame on a new connection, opens the next segment,
so a frame of an older generation after a newer one shows as the generation
going down (split brain). *Events*: connect, close (code, reason), join_failed
(consecutive failures with the same reason are one event with a count),
silence, gave_up.

Memory is bounded: at most MAX_SEGMENTS closed segments and MAX_EVENTS
events; beyond that the two oldest segments merge when they are of the same
generation and edge (the gap between them counts into the merged largest
gap) and are otherwise dropped, the oldest event is dropped, and the history
says ``truncated``. A listener on one healthy connection for hours holds one
segment. The open segment lives in plain fields that the crowd's frame hot
path updates in place (``audioroom.crowd.Listener.on_frame``); only a
connection or generation change builds a tuple. Times are wall-clock
milliseconds here and seconds in the JSON.
"""

from __future__ import annotations

import sys
from typing import Any

MAX_SEGMENTS = 32
MAX_EVENTS = 32
MAX_HOLES = 8  # missing sequence ranges remembered per segment, to tell a late frame from a duplicate

# closed segment tuple: (gen, edge, first_seq, last_seq, first_t, last_t, frames, dups, reorders, max_gap)
GEN, EDGE, FIRST_SEQ, LAST_SEQ, FIRST_T, LAST_T, FRAMES, DUPS, REORDERS, MAX_GAP = range(10)

# what History.out_of_sequence found
DUPLICATE, LATE = -1, 0


def _s(ms: float) -> float:
    return round(ms / 1000.0, 3)


class History:
    __slots__ = ("gen", "last_gen", "edge", "first_seq", "last_seq", "first_t", "last_t", "frames", "dups",
                 "reorders", "max_gap", "holes", "segments", "events", "truncated", "joined_at", "conn_edge",
                 "conn_t")

    def __init__(self) -> None:
        self.gen = -1  # generation of the open segment; -1: none open, the next frame opens one
        self.last_gen = 0  # generation of the last frame heard (0: nothing heard yet)
        self.edge = ""
        self.first_seq = self.last_seq = -1
        self.first_t = self.last_t = 0.0
        self.frames = self.dups = self.reorders = 0
        self.max_gap = 0.0
        self.holes: list[list[int]] | None = None
        self.segments: list[tuple] = []
        self.events: list[Any] = []
        self.truncated = False
        self.joined_at = 0.0  # first successful join (wall ms), 0 if never
        self.conn_edge = ""  # edge of the current (or last) connection
        self.conn_t = 0.0  # when the current connection opened (wall ms)

    # segments ------------------------------------------------------------------
    def open(self, gen: int, seq: int, now: float) -> None:
        """Start a segment with this frame (the previous one must be closed)."""
        self.gen = self.last_gen = gen
        self.edge = self.conn_edge
        self.first_seq = self.last_seq = seq
        self.first_t = self.last_t = now
        self.frames = 1
        self.dups = self.reorders = 0
        self.max_gap = 0.0
        self.holes = None

    def close_open(self) -> None:
        if self.gen < 0:
            return
        self.segments.append((self.gen, self.edge, self.first_seq, self.last_seq, self.first_t, self.last_t,
                              self.frames, self.dups, self.reorders, self.max_gap))
        self.gen = -1
        if len(self.segments) > MAX_SEGMENTS:
            self._shed_segment()

    def _shed_segment(self) -> None:
        a, b = self.segments[0], self.segments[1]
        if a[GEN] == b[GEN] and a[EDGE] == b[EDGE]:
            merged = (a[GEN], a[EDGE], a[FIRST_SEQ], b[LAST_SEQ], a[FIRST_T], b[LAST_T], a[FRAMES] + b[FRAMES],
                      a[DUPS] + b[DUPS], a[REORDERS] + b[REORDERS],
                      max(a[MAX_GAP], b[MAX_GAP], b[FIRST_T] - a[LAST_T]))
            self.segments[0:2] = [merged]
        else:
            del self.segments[0]
        self.truncated = True

    def out_of_sequence(self, seq: int) -> int:
        """A frame of the open segment that is not the next one: how many frames it shows missing
        (> 0), or LATE (it fills a gap), or DUPLICATE. Updates the segment."""
        last = self.last_seq
        if seq > last:
            holes = self.holes
            if holes is None:
                holes = self.holes = []
            holes.append([last + 1, seq - 1])
            if len(holes) > MAX_HOLES:
                del holes[0]
            self.last_seq = seq
            return seq - last - 1
        for i, hole in enumerate(self.holes or ()):
            lo, hi = hole
            if lo <= seq <= hi:
                if lo == hi:
                    del self.holes[i]  # type: ignore[union-attr]
                elif seq == lo:
                    hole[0] = seq + 1
                elif seq == hi:
                    hole[1] = seq - 1
                else:
                    hole[1] = seq - 1
                    self.holes.insert(i + 1, [seq + 1, hi])  # type: ignore[union-attr]
                self.reorders += 1
                return LATE
        self.dups += 1
        return DUPLICATE

    # connection life -------------------------------------------------------------
    def connecting(self, edge: str) -> None:
        """A new connection to ``edge`` is being opened: its first frame starts a new segment."""
        self.close_open()
        self.conn_edge = sys.intern(edge)

    def joined(self, edge: str, generation: int | None, now: float) -> None:
        self.conn_edge = sys.intern(edge)
        self.conn_t = now
        if not self.joined_at:
            self.joined_at = now
        self._event((now, "connect", self.conn_edge, generation))

    def closed(self, code: int, reason: str, now: float) -> None:
        self._event((now, "close", self.conn_edge, code, sys.intern(reason[:60])))

    def join_failed(self, reason: str, now: float) -> None:
        last = self.events[-1] if self.events else None
        if last is not None and last[1] == "join_failed" and last[2] == reason:
            last[3] += 1
            last[4] = now
            return
        self._event([now, "join_failed", reason, 1, now])

    def silence(self, silent_ms: float, now: float) -> None:
        self._event((now, "silence", self.conn_edge, silent_ms))

    def gave_up(self, reason: str, now: float) -> None:
        self._event((now, "gave_up", reason))

    def _event(self, event: Any) -> None:
        self.events.append(event)
        if len(self.events) > MAX_EVENTS:
            del self.events[0]
            self.truncated = True

    # JSON ------------------------------------------------------------------------
    def segments_json(self) -> list[dict[str, Any]]:
        closed = list(self.segments)
        if self.gen >= 0:
            closed.append((self.gen, self.edge, self.first_seq, self.last_seq, self.first_t, self.last_t,
                           self.frames, self.dups, self.reorders, self.max_gap))
        return [{"gen": s[GEN], "edge": s[EDGE], "first_seq": s[FIRST_SEQ], "last_seq": s[LAST_SEQ],
                 "first_t": _s(s[FIRST_T]), "last_t": _s(s[LAST_T]), "frames": s[FRAMES], "dups": s[DUPS],
                 "reorders": s[REORDERS], "max_gap_s": _s(s[MAX_GAP])} for s in closed]

    def events_json(self) -> list[dict[str, Any]]:
        out = []
        for e in self.events:
            kind = e[1]
            if kind == "connect":
                out.append({"t": _s(e[0]), "kind": kind, "edge": e[2], "generation": e[3]})
            elif kind == "close":
                out.append({"t": _s(e[0]), "kind": kind, "edge": e[2], "code": e[3], "reason": e[4]})
            elif kind == "join_failed":
                out.append({"t": _s(e[0]), "kind": kind, "reason": e[2], "count": e[3], "last_t": _s(e[4])})
            elif kind == "silence":
                out.append({"t": _s(e[0]), "kind": kind, "edge": e[2], "silent_s": _s(e[3])})
            else:
                out.append({"t": _s(e[0]), "kind": kind, "reason": e[2]})
        return out

    def to_json(self, listener_id: str, room: str, active: bool) -> dict[str, Any]:
        return {"id": listener_id, "room": room, "joined_at": _s(self.joined_at) if self.joined_at else None,
                "active": active, "segments": self.segments_json(), "events": self.events_json(),
                "truncated": self.truncated}
