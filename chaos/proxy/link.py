"""One direction of one proxied connection, and its chain of toxic stages.

With no toxic in a direction, bytes go straight from one transport to the
other (``Side.data_received``). With toxics, each chunk is queued into the
first :class:`~chaos.proxy.toxics.base.Stub`; each stub runs its toxic's
``pipe`` as a task and hands chunks to the next stub, the last one to the
destination transport.

Re-plumbing a live link never loses or reorders a byte: a stub's state is
only ever "queued" or "held" (``stub.holding``) between awaits, ``send`` is
synchronous, and a stub that is removed or updated forwards what it held and
queued, in order, before anything newer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Generic, Protocol, TypeVar

from chaos.proxy.flow import ProxyView
from chaos.proxy.toxics.base import Chunk, Direction, End, Stub, Timer, ToxicSpec

log = logging.getLogger("chaos.proxy")


class Endpoint(Protocol):
    """A socket of the connection, as a link sees it (connection.Side)."""

    transport: asyncio.Transport | None

    def hold_back(self, on: bool) -> None:
        """Pause (or resume) reading: the link this side feeds is full."""


E = TypeVar("E", bound=Endpoint)


class Owner(Protocol):
    """The connection a link belongs to (connection.Connection)."""

    proxy: ProxyView
    ordinal: int

    def end(self, link: Link[Any], end: End) -> None:
        """The end of ``link``'s stream reached its destination."""


class _Sink:
    """Stands first in a severed link: every byte is counted as read and dropped."""

    __slots__ = ("link",)

    def __init__(self, link: Link[Any]) -> None:
        self.link = link

    def push(self, item: Chunk | End) -> None:
        if isinstance(item, Chunk):
            self.link.discard(len(item.data))


class Link(Generic[E]):
    """Bytes read from ``src`` and written to ``dst`` (one direction); the
    :class:`~chaos.proxy.toxics.base.Outlet` of its stubs. ``E``: what its ends are (connection.Side)."""

    __slots__ = ("conn", "direction", "src", "dst", "counters", "stubs", "head", "buffered", "limit",
                 "timer", "rng_key", "eof_fed", "holding_back", "severed")

    def __init__(self, conn: Owner, direction: Direction, src: E, dst: E, counters: list[int]) -> None:
        self.conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        self.counters = counters  # [received, sent] for the proxy and this direction
        self.stubs: list[Stub] = []
        self.head: Stub | _Sink | None = None
        self.buffered = 0
        self.limit = 0
        proxy = conn.proxy
        self.timer: Timer = proxy.timer
        self.rng_key = f"{proxy.seed}/{proxy.name}/{conn.ordinal}/{direction.value}"
        self.eof_fed = False  # the source's end entered the link
        self.holding_back = False  # the source is paused because the chain is full
        self.severed = False  # the destination is gone: nothing more can be written

    # -- data ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.counters[0] += len(data)
        self.buffered += len(data)
        self.head.push(Chunk(data, time.monotonic()))  # type: ignore[union-attr]
        if self.buffered > self.limit and not self.holding_back:
            self.holding_back = True
            self.src.hold_back(True)

    def feed_eof(self) -> None:
        if self.eof_fed:
            return
        self.eof_fed = True
        if self.head is not None:
            self.head.push(End.EOF)
        else:
            self.conn.end(self, End.EOF)

    def deliver(self, item: Chunk | End) -> None:
        if isinstance(item, End):
            self.conn.end(self, item)
            return
        n = len(item.data)
        self.buffered -= n
        self.counters[1] += n
        transport = self.dst.transport
        if transport is not None and not transport.is_closing():
            transport.write(item.data)
        if self.holding_back and self.buffered <= self.limit // 2:
            self.holding_back = False
            self.src.hold_back(False)

    def discard(self, nbytes: int) -> None:
        self.buffered -= nbytes
        if self.holding_back and self.buffered <= self.limit // 2:
            self.holding_back = False
            self.src.hold_back(False)

    def account(self, nbytes: int) -> None:
        self.buffered += nbytes

    def failed(self, stub: Stub, exc: BaseException) -> None:
        log.error("toxic %s failed on a connection of %s: %r", stub.spec.name, self.conn.proxy.name, exc)

    # -- chain changes (called synchronously by the proxy) --------------------
    def _relimit(self) -> None:
        self.limit = max((s.spec.toxic.buffer_hint for s in self.stubs), default=0)

    def add(self, spec: ToxicSpec) -> None:
        if self.severed:
            return
        stub = Stub(self, spec)
        if self.stubs:
            self.stubs[-1].next = stub
        else:
            self.head = stub
        self.stubs.append(stub)
        self._relimit()
        stub.start()

    def _index(self, spec: ToxicSpec) -> int:
        for i, stub in enumerate(self.stubs):
            if stub.spec is spec:
                return i
        return -1

    def update(self, spec: ToxicSpec) -> None:
        i = self._index(spec)
        if i < 0:
            return
        stub = self.stubs[i]
        if stub.closed:
            return
        held = stub.interrupt()
        if held is not None:
            stub.forward(held)  # flush what was in flight, as Toxiproxy does
        self._relimit()
        stub.start()

    def remove(self, spec: ToxicSpec) -> None:
        i = self._index(spec)
        if i < 0:
            return
        stub = self.stubs[i]
        held = stub.interrupt()
        # unlink first: what the stub forwards below may end (and stop) this link
        nxt = stub.next
        if i > 0:
            self.stubs[i - 1].next = nxt
        else:
            self.head = nxt
        del self.stubs[i]
        self._relimit()
        if stub.closed:
            return
        if stub.active and spec.toxic.cleanup(stub):
            return  # the toxic closed the link (timeout); its end is on its way
        items: list[Chunk | End] = [held] if held is not None else []
        items.extend(stub.queue)
        stub.queue.clear()
        stub.closed = True  # nothing more may enter it
        for item in items:
            stub.forward(item)
        if not self.stubs and self.holding_back:
            self.holding_back = False
            self.src.hold_back(False)

    def stop(self) -> None:
        for stub in self.stubs:
            stub.interrupt()
            stub.closed = True
        self.stubs.clear()
        self.head = None

    def sever(self) -> None:
        """The destination is gone: drop what the chain holds and whatever comes."""
        if self.severed:
            return
        self.stop()
        self.severed = True
        self.head = _Sink(self)
        self.buffered = 0
        if self.holding_back:
            self.holding_back = False
            self.src.hold_back(False)
