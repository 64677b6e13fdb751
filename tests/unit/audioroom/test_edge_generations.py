"""The edge keeps a room's newest generation: a heartbeat answer or a cached lookup about an
older generation must not turn away the host and listeners of a room relaunched back onto it.

Real processes: tests/local/audioroom/test_return.py (relaunch A -> B -> A).
"""

import asyncio
import time
from types import SimpleNamespace

from audioroom import config
from audioroom.edge import MOVED, Edge
from audioroom.state import Assignment

ENV = {"RQ_SERVICE": "edge", "RQ_INSTANCE": "edge-1", "RQ_ROUTES": "{}", "HEARTBEAT_INTERVAL": "100ms",
       "HEARTBEAT_TIMEOUT": "1s"}


class Conn:
    """A WebSocket connection as the edge sees it: a path, close(), and (for hosts) incoming frames."""

    def __init__(self, path: str = "/listen/launch") -> None:
        self.request = SimpleNamespace(path=path)
        self.closed_with: tuple[int, str] | None = None
        self._closed = asyncio.Event()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = (code, reason)
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        await self._closed.wait()
        raise StopAsyncIteration


class SlowBeatState:
    """Answers a heartbeat only when released, with the rooms state says are no longer here."""

    def __init__(self, assignments: list[Assignment]) -> None:
        self.release = asyncio.Event()
        self.reported: list[tuple[str, int, bool]] = []
        self.moved: list[str] = []
        self.assignments = assignments
        self.lookups = 0

    async def edge_heartbeat(self, edge, listeners, capacity, rooms):
        self.reported = list(rooms)
        await self.release.wait()
        return self.moved, []

    async def room_assignment(self, room):
        self.lookups += 1
        return self.assignments[min(self.lookups, len(self.assignments)) - 1]


def edge(state) -> Edge:
    e = Edge(config.load(ENV), state)
    e.last_beat = time.monotonic()  # a recent heartbeat: not fenced
    return e


async def test_a_moved_answer_about_an_old_generation_spares_the_newer_one_admitted_meanwhile():
    state = SlowBeatState([])
    e = edge(state)
    old_listener = Conn()
    e.live_room("launch", 1).listeners.add(old_listener)
    beat = asyncio.ensure_future(e.heartbeat())
    await asyncio.sleep(0)
    assert state.reported == [("launch", 1, False)]

    # while the beat is in flight, the room comes back here at generation 3 and its listener joins
    new_listener = Conn()
    e.live_room("launch", 3).listeners.add(new_listener)
    state.moved = ["launch"]  # true of generation 1, which is what the beat reported
    state.release.set()
    await beat
    await asyncio.sleep(0)
    assert old_listener.closed_with == (MOVED, "moved")
    assert new_listener.closed_with is None
    assert e.rooms["launch"].generation == 3

    # the next beat reports generation 3; a moved answer about it evicts it as usual
    state.release = asyncio.Event()
    state.release.set()
    await e.heartbeat()
    assert state.reported == [("launch", 3, False)]
    await e.heartbeat()
    assert new_listener.closed_with is None
    state.moved = ["launch"]
    await e.heartbeat()
    await asyncio.sleep(0)
    assert new_listener.closed_with == (MOVED, "moved") and "launch" not in e.rooms


async def test_a_host_of_a_newer_generation_than_the_cached_answer_is_checked_against_state():
    # cached: generation 2 on edge-2 (from a listener's lookup); state now: generation 3 back here
    state = SlowBeatState([Assignment("edge-2", 2, "live", "alice"), Assignment("edge-1", 3, "live", "alice")])
    e = edge(state)
    probe = Conn("/listen/launch")
    await e.handler(probe)
    assert probe.closed_with == (MOVED, "moved")

    host = Conn("/host/launch?generation=3&account=alice")
    serving = asyncio.ensure_future(e.handler(host))
    await asyncio.sleep(0.01)
    assert host.closed_with is None and e.rooms["launch"].host is host
    assert state.lookups == 2
    await host.close()
    await serving

    # a host of an older generation than state's is still refused
    stale = Conn("/host/launch?generation=2&account=alice")
    await e.handler(stale)
    assert stale.closed_with == (MOVED, "moved")
