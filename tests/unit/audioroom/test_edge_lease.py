"""The edge's hold on its rooms is a lease of LEASE_TTL, renewed by each heartbeat that reaches the store:
a store that does not answer for less than that closes nothing; past it the edge fences itself.

Real processes and a real paused Redis: tests/local/audioroom/test_state_stall.py.
"""

import asyncio
import time

import pytest
from redis.exceptions import TimeoutError as RedisTimeout

from audioroom import config
from audioroom.edge import MOVED, Edge

ENV = {"RQ_SERVICE": "edge", "RQ_INSTANCE": "edge-1", "RQ_ROUTES": "{}", "HEARTBEAT_INTERVAL": "100ms",
       "HEARTBEAT_TIMEOUT": "1s", "LEASE_TTL": "5s"}


class Conn:
    def __init__(self) -> None:
        self.closed_with = None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = (code, reason)


class Store:
    def __init__(self) -> None:
        self.down = False
        self.gone: list[str] = []

    async def edge_heartbeat(self, edge, listeners, capacity, rooms):
        if self.down:
            raise RedisTimeout("Timeout reading from socket")
        return [], list(self.gone)


def edge_with_a_listener(store: Store, beat_age: float) -> tuple[Edge, Conn]:
    e = Edge(config.load(ENV), store)  # type: ignore[arg-type]
    e.last_beat = time.monotonic() - beat_age
    conn = Conn()
    e.live_room("launch", 1).listeners.add(conn)
    return e, conn


async def test_a_store_outage_shorter_than_the_lease_closes_nothing():
    store = Store()
    store.down = True
    e, conn = edge_with_a_listener(store, beat_age=3.5)  # longer than HEARTBEAT_TIMEOUT, shorter than LEASE_TTL
    with pytest.raises(RedisTimeout):
        await e.heartbeat()
    await asyncio.sleep(0)
    assert conn.closed_with is None and not e.fenced() and "launch" in e.rooms
    store.down = False
    await e.heartbeat()
    assert time.monotonic() - e.last_beat < 1.0 and conn.closed_with is None


async def test_past_the_lease_the_edge_fences_itself():
    store = Store()
    store.down = True
    e, conn = edge_with_a_listener(store, beat_age=5.5)
    assert e.fenced()
    with pytest.raises(RedisTimeout):
        await e.heartbeat()
    await asyncio.sleep(0)
    assert conn.closed_with == (MOVED, "moved") and not e.rooms


async def test_a_room_the_store_no_longer_knows_is_closed_as_gone():
    store = Store()
    store.gone = ["launch"]
    e, conn = edge_with_a_listener(store, beat_age=0.1)
    await e.heartbeat()
    await asyncio.sleep(0)
    assert conn.closed_with == (MOVED, "moved") and "launch" not in e.rooms


class Listening(Conn):
    """A listener connection as the edge's handler sees it (a path; it stays until closed)."""

    def __init__(self) -> None:
        super().__init__()
        from types import SimpleNamespace

        self.request = SimpleNamespace(path="/listen/launch")
        self._closed = asyncio.Event()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await super().close(code, reason)
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()


async def test_a_starved_edge_still_admits_listeners_of_a_room_the_store_says_is_here():
    from audioroom.state import Assignment

    class Here(Store):
        async def room_assignment(self, room):
            return Assignment("edge-1", 1, "live", "alice")

    e = Edge(config.load(ENV), Here())  # type: ignore[arg-type]
    e.last_beat = time.monotonic() - 6.0  # our beats lapsed past the lease (the process was starved)
    assert e.fenced()
    conn = Listening()
    serving = asyncio.ensure_future(e.handler(conn))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert conn.closed_with is None and e.listeners == 1  # admitted, not sent away with 4004
    await conn.close()
    await serving


# The host's presence as the heartbeat reports it: frames heard lately, not a connection held open.

class Recording(Store):
    def __init__(self) -> None:
        super().__init__()
        self.reported: list[list] = []

    async def edge_heartbeat(self, edge, listeners, capacity, rooms):
        self.reported.append(list(rooms))
        return await super().edge_heartbeat(edge, listeners, capacity, rooms)


def edge_hosting(store: Store, heard_ago: float) -> Edge:
    e = Edge(config.load({**ENV, "HOST_GRACE": "1500ms"}), store)  # type: ignore[arg-type]
    room = e.live_room("launch", 1)
    room.host = Conn()  # type: ignore[assignment]
    room.heard = time.monotonic() - heard_ago
    return e


@pytest.mark.parametrize("heard_ago, hosted", [(0.05, True), (0.4, True), (2.0, False)])
async def test_a_connected_host_counts_only_while_its_frames_come_in(heard_ago: float, hosted: bool):
    store = Recording()
    e = edge_hosting(store, heard_ago)
    e.last_try = time.monotonic() - 0.1  # beats every 100 ms: a frame within HOST_GRACE/3 (0.5 s) of the last one
    await e.heartbeat()
    assert store.reported == [[("launch", 1, hosted)]]


async def test_after_a_stall_of_the_edge_itself_the_frames_from_before_it_still_count():
    store = Recording()
    e = edge_hosting(store, heard_ago=3.0)  # the last frame came in just before this edge's loop stalled
    e.last_try = time.monotonic() - 3.0  # the previous beat was tried just before the stall too
    await e.heartbeat()
    await e.heartbeat()  # a beat later with still nothing from the host: gone
    assert store.reported == [[("launch", 1, True)], [("launch", 1, False)]]
