"""A listener's compact history (contract C1): segments per connection and generation, events, bounds.

Frames go through the crowd's real hot path (``Listener.on_frame``) with a
controlled clock; the served JSON runs on real processes in
tests/local/audioroom/test_history.py.
"""

import json

import pytest

from audioroom import crowd, frames, history
from audioroom.history import History

from .test_logic import FakeCrowd


class Clock:
    def __init__(self) -> None:
        self.t = 1_764_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(crowd, "_now", c)
    return c


def frame(gen: int, seq: int, sent_s: float) -> bytes:
    return frames.encode(frames.Frame("launch", gen, seq, sent_s * 1000.0), 160)


def connect(listener: crowd.Listener, edge: str, gen: int, clock: Clock) -> None:
    """What Listener._join records around a successful connection."""
    listener.history.connecting(edge)
    listener.history.joined(edge, gen, clock.t * 1000.0)


def hear(listener: crowd.Listener, clock: Clock, gen: int, seqs, step: float = 0.1) -> None:
    for seq in seqs:
        clock.t += step
        listener.on_frame(frame(gen, seq, clock.t - 0.02))


def test_one_connection_is_one_segment_with_ranges_gaps_dups_and_late_frames(clock):
    listener = crowd.Listener(FakeCrowd(), "launch", 4)
    connect(listener, "edge-1", 1, clock)
    hear(listener, clock, 1, [0, 1, 2, 4, 3, 3, 5])  # 3 arrives late (not lost after all), then again (a duplicate)
    clock.t += 0.9  # a 1 s gap before frame 6
    hear(listener, clock, 1, [6])
    out = listener.history_json()
    assert (out["id"], out["room"], out["active"], out["truncated"]) == ("crowd-1/4", "launch", True, False)
    [segment] = out["segments"]
    assert segment | {"first_t": 0, "last_t": 0} == {
        "gen": 1, "edge": "edge-1", "first_seq": 0, "last_seq": 6, "first_t": 0, "last_t": 0,
        "frames": 8, "dups": 1, "reorders": 1, "max_gap_s": 1.0}
    assert segment["last_t"] - segment["first_t"] == pytest.approx(1.6, abs=0.002)
    assert [e["kind"] for e in out["events"]] == ["connect"] and out["events"][0]["generation"] == 1
    stats = listener.stats
    assert (stats.frames, stats.lost, stats.out_of_order) == (8, 1, 2)
    json.dumps(out)  # plain JSON


def test_reconnects_and_relaunches_open_segments_and_an_older_generation_after_a_newer_one_shows(clock):
    listener = crowd.Listener(FakeCrowd(), "launch", 0)
    connect(listener, "edge-1", 1, clock)
    hear(listener, clock, 1, range(0, 5))
    listener.history.closed(1006, "", clock.t * 1000.0)
    clock.t += 0.5
    connect(listener, "edge-1", 1, clock)  # same edge, same generation: a new segment all the same
    hear(listener, clock, 1, range(8, 10))
    listener.history.closed(4004, "moved", clock.t * 1000.0)
    connect(listener, "edge-2", 2, clock)
    hear(listener, clock, 2, range(0, 3))
    hear(listener, clock, 1, [10])  # split brain: generation 1 again after 2
    hear(listener, clock, 2, [3])
    out = listener.history_json()
    assert [(s["gen"], s["edge"], s["first_seq"], s["last_seq"], s["frames"]) for s in out["segments"]] == [
        (1, "edge-1", 0, 4, 5), (1, "edge-1", 8, 9, 2), (2, "edge-2", 0, 2, 3), (1, "edge-2", 10, 10, 1),
        (2, "edge-2", 3, 3, 1)]
    assert [(e["kind"], e.get("code"), e.get("edge")) for e in out["events"]] == [
        ("connect", None, "edge-1"), ("close", 1006, "edge-1"), ("connect", None, "edge-1"),
        ("close", 4004, "edge-1"), ("connect", None, "edge-2")]
    assert listener.stats.lost == 3  # 5, 6, 7 across the reconnect
    assert listener.track.members == {1: 1, 2: 1}


def test_memory_is_bounded_oldest_segments_merge_or_go_and_the_history_says_truncated(clock):
    listener = crowd.Listener(FakeCrowd(), "launch", 0)
    for n in range(history.MAX_SEGMENTS + 10):  # a kick loop: same edge, same generation, many connections
        connect(listener, "edge-1", 1, clock)
        hear(listener, clock, 1, [n * 2, n * 2 + 1])
        clock.t += 3.0
        listener.history.closed(4001, "kicked", clock.t * 1000.0)
    out = listener.history_json()
    assert out["truncated"] and len(out["segments"]) <= history.MAX_SEGMENTS + 1
    oldest = out["segments"][0]
    assert oldest["first_seq"] == 0 and oldest["max_gap_s"] >= 3.0  # merged: the gap between them counts
    assert sum(s["frames"] for s in out["segments"]) == 2 * (history.MAX_SEGMENTS + 10)  # no frame unaccounted
    assert len(out["events"]) == history.MAX_EVENTS

    other = crowd.Listener(FakeCrowd(), "launch", 1)
    for gen in range(1, history.MAX_SEGMENTS + 10):  # different generations cannot merge: the oldest go
        connect(other, f"edge-{gen % 3}", gen, clock)
        hear(other, clock, gen, [0])
    segments = other.history_json()["segments"]
    assert len(segments) == history.MAX_SEGMENTS + 1 and segments[-1]["gen"] == history.MAX_SEGMENTS + 9


def test_consecutive_join_failures_with_one_reason_are_one_event_with_a_count():
    h = History()
    for t in (1000.0, 2000.0, 3000.0):
        h.join_failed("state_unreachable", t)
    h.join_failed("not_found", 4000.0)
    h.gave_up("room gone", 5000.0)
    h.silence(1600.0, 6000.0)
    assert h.events_json() == [
        {"t": 1.0, "kind": "join_failed", "reason": "state_unreachable", "count": 3, "last_t": 3.0},
        {"t": 4.0, "kind": "join_failed", "reason": "not_found", "count": 1, "last_t": 4.0},
        {"t": 5.0, "kind": "gave_up", "reason": "room gone"},
        {"t": 6.0, "kind": "silence", "edge": "", "silent_s": 1.6},
    ]
    assert h.to_json("crowd-1/0", "launch", False)["joined_at"] is None


class SilentCrowd(FakeCrowd):
    """A crowd whose control answers a join with ``answer`` (status, body)."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.silences = 0
        self.asked = 0

    async def control_join(self, room):
        self.asked += 1
        return self.answer


class Proto:
    def __init__(self) -> None:
        self.closed_with = None

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = (code, reason)


def silent_listener(answer, clock) -> crowd.Listener:
    listener = crowd.Listener(SilentCrowd(answer), "launch", 0)
    listener.edge, listener.joined_gen, listener.proto = "edge-1", 1, Proto()
    listener.checking = True  # as the watchdog sets it
    return listener


async def test_a_silent_listener_whose_room_is_elsewhere_leaves_to_join_it_there(clock):
    listener = silent_listener((200, {"edge": "edge-2", "generation": 2}), clock)
    before = crowd.SILENCES._value.get()
    await listener.check_silence(1600.0)
    assert listener.proto.closed_with == (1000, "silence") and listener.move_to == {"edge": "edge-2", "generation": 2}
    assert crowd.SILENCES._value.get() == before + 1 and not listener.checking
    assert [e["kind"] for e in listener.history.events_json()] == ["silence"]


async def test_a_silent_listener_told_the_room_is_here_stays_and_asks_again_later_counting_one_silence(clock):
    listener = silent_listener((200, {"edge": "edge-1", "generation": 1}), clock)
    before = crowd.SILENCES._value.get()
    await listener.check_silence(1600.0)
    first = listener.next_check
    assert listener.proto.closed_with is None and listener.move_to is None and first > clock.t * 1000.0
    listener.checking = True
    await listener.check_silence(2000.0)
    assert listener.next_check > first  # backing off
    assert crowd.SILENCES._value.get() == before + 1 and listener.crowd.asked == 2
    # control cannot say (state unreachable): stay connected as well
    listener.crowd.answer = (503, {"reason": "state unreachable: TimeoutError"})
    listener.checking = True
    await listener.check_silence(2500.0)
    assert listener.proto.closed_with is None


async def test_a_silent_listener_whose_room_is_gone_leaves(clock):
    listener = silent_listener((404, {"reason": "no room 'launch'"}), clock)
    await listener.check_silence(1600.0)
    assert listener.proto.closed_with == (1000, "silence") and listener.move_to is None
