"""The toxic chain of one link, driven with fake transports (no sockets)."""

from __future__ import annotations

import asyncio
import random

from chaos.proxy.connection import Connection, Side
from chaos.proxy.link import Link
from chaos.proxy.timer import PreciseTimer
from chaos.proxy.toxics import REGISTRY
from chaos.proxy.toxics.base import Direction, ToxicSpec


class FakeTransport:
    def __init__(self) -> None:
        self.data = bytearray()
        self.eof = False
        self.closed = False
        self.paused = False

    def write(self, data) -> None:
        self.data.extend(data)

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    abort = close

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name):
        return None


class FakeProxy:
    name = "p"
    seed = 1

    def __init__(self, timer) -> None:
        self.timer = timer
        self.connections = set()
        self.counters = {Direction.UPSTREAM: [0, 0], Direction.DOWNSTREAM: [0, 0]}


def spec(type_: str, name: str, **attributes) -> ToxicSpec:
    return ToxicSpec(name, type_, "upstream", Direction.UPSTREAM, 1.0, REGISTRY[type_](**attributes))


async def make_link():
    proxy = FakeProxy(PreciseTimer(asyncio.get_running_loop()))
    conn = Connection(proxy, 0)  # type: ignore[arg-type]
    src, dst = Side(conn), Side(conn)
    conn.client, conn.upstream = src, dst  # type: ignore[assignment]
    src.transport, dst.transport = FakeTransport(), FakeTransport()
    link = Link(conn, Direction.UPSTREAM, src, dst, proxy.counters[Direction.UPSTREAM])
    back = Link(conn, Direction.DOWNSTREAM, dst, src, proxy.counters[Direction.DOWNSTREAM])
    src.out, src.inp = link, back
    dst.inp, dst.out = link, back
    conn.links = {Direction.UPSTREAM: link, Direction.DOWNSTREAM: back}
    return link, src, dst


async def until(done, timeout: float = 5.0) -> None:
    """Let the loop run until ``done()`` (a loaded machine delays timers: no fixed sleeps)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not done() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.002)


async def settle(link: Link, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while link.buffered and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.002)


async def test_no_toxic_is_a_straight_copy():
    link, src, dst = await make_link()
    src.data_received(b"abc")
    assert dst.transport.data == b"abc"
    assert link.counters == [3, 3]


async def test_chain_changes_keep_every_byte_in_order():
    link, src, dst = await make_link()
    rng = random.Random(3)
    sent = bytearray()
    specs = []
    for i in range(60):
        chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        src.data_received(chunk)
        sent.extend(chunk)
        action = rng.random()
        if action < 0.4 or not specs:
            kind = rng.choice(["latency", "slicer", "bandwidth", "noop"])
            attrs = {"latency": {"latency": 3}, "slicer": {"average_size": 7, "delay": 50},
                     "bandwidth": {"rate": 500}, "noop": {}}[kind]
            s = spec(kind, f"t{i}", **attrs)
            specs.append(s)
            link.add(s)
        elif action < 0.7:
            link.remove(specs.pop(rng.randrange(len(specs))))
        else:
            s = specs[rng.randrange(len(specs))]
            s.generation += 1
            link.update(s)
        await asyncio.sleep(rng.random() * 0.003)
    await settle(link)
    assert bytes(dst.transport.data) == bytes(sent)
    link.stop()


async def test_limit_data_closes_after_exactly_n_bytes():
    link, src, dst = await make_link()
    link.add(spec("limit_data", "lim", bytes=5))
    src.data_received(b"0123")
    src.data_received(b"456789")
    await until(lambda: dst.transport.closed)
    assert dst.transport.data == b"01234"
    assert dst.transport.closed and src.transport.closed


async def test_eof_passes_through_the_chain_after_the_data():
    link, src, dst = await make_link()
    link.add(spec("latency", "lat", latency=300))  # long enough that the first look comes before it on a loaded machine
    src.data_received(b"last words")
    src.eof_received()
    await asyncio.sleep(0.005)
    assert not dst.transport.eof and dst.transport.data == b""
    await until(lambda: dst.transport.eof)
    assert dst.transport.data == b"last words" and dst.transport.eof


async def test_full_chain_pauses_the_reader():
    link, src, dst = await make_link()
    link.add(spec("bandwidth", "bw", rate=1))
    src.data_received(b"x" * (link.limit + 1))
    assert src.transport.paused
    link.remove(link.stubs[0].spec)
    assert not src.transport.paused
    assert len(dst.transport.data) == link.counters[1]


async def test_a_lost_source_still_delivers_what_the_chain_holds_then_closes():
    link, src, dst = await make_link()
    link.add(spec("latency", "lat", latency=300))
    src.data_received(b"hi")
    src.transport.closed = True
    src.connection_lost(ConnectionResetError())  # the peer reset right behind its bytes
    await asyncio.sleep(0.005)
    assert dst.transport.data == b"" and not dst.transport.closed  # still held by the toxic
    await until(lambda: dst.transport.closed)
    assert dst.transport.data == b"hi" and dst.transport.closed


async def test_bytes_heading_to_a_lost_side_are_dropped():
    link, src, dst = await make_link()
    back = src.inp
    link.add(spec("slow_close", "sc", delay=30))
    dst.data_received(b"to the lost side")
    src.transport.closed = True
    src.connection_lost(None)
    dst.data_received(b"more")  # still read (no pause), never written
    assert back.severed and back.counters[1] == len(b"to the lost side")  # the first was written before
    await until(lambda: dst.transport.closed)
    assert dst.transport.closed  # slow_close held the end 30 ms, then the live side was closed


async def test_bandwidth_rate_zero_stalls_until_updated():
    link, src, dst = await make_link()
    bw = spec("bandwidth", "bw", rate=0)
    link.add(bw)
    src.data_received(b"stuck")
    await asyncio.sleep(0.05)
    assert dst.transport.data == b""
    bw.toxic.rate = 1000
    bw.generation += 1
    link.update(bw)  # what the toxic held is passed on
    await settle(link)
    assert dst.transport.data == b"stuck"
