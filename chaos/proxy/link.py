"""One direction of one proxied connection, and its chain of toxic stages.

With no toxic in a direction, bytes go straight from one transport to the
other (``Side.data_received``). With toxics, each chunk is queued into the
first :class:`Stub`; each stub runs its toxic's ``pipe`` as a task and hands
chunks to the next stub, the last one to the destination transport.

Re-plumbing a live link never loses or reorders a byte: a stub's state is
only ever "queued" or "held" (``stub.holding``) between awaits, ``send`` is
synchronous, and a stub that is removed or updated forwards what it held and
queued, in order, before anything newer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any, AsyncIterator

if TYPE_CHECKING:
    from chaos.proxy.connection import Connection, Side
    from chaos.proxy.toxics.base import Toxic

log = logging.getLogger("chaos.proxy")

EOF_ = "eof"  # the source closed its write side: half-close the destination
CLOSE = "close"  # a toxic ends the connection: close both ways
RESET = "reset"  # reset_peer: abort both ways with RST


class Chunk:
    __slots__ = ("data", "ts")

    def __init__(self, data: bytes | memoryview, ts: float) -> None:
        self.data = data
        self.ts = ts  # when it was read (latency counts from here)


class End:
    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind


class _TimedOut:
    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Any = _TimedOut()
_UNSEEDED = random.Random(0)


class ToxicSpec:
    """A toxic as the API shows it; shared by every link of its proxy."""

    __slots__ = ("name", "type", "stream", "toxicity", "toxic", "generation")

    def __init__(self, name: str, type_: str, stream: str, toxicity: float, toxic: Toxic) -> None:
        self.name = name
        self.type = type_
        self.stream = stream
        self.toxicity = toxicity
        self.toxic = toxic
        self.generation = 0  # bumped on update: toxicity is drawn again

    def as_json(self) -> dict[str, Any]:
        return {
            "attributes": self.toxic.as_json(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


class Stub:
    """A toxic's view of one link: its input queue and its way out."""

    def __init__(self, link: Link, spec: ToxicSpec) -> None:
        self.link = link
        self.spec = spec
        self.queue: deque[Chunk | End] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.holding: Chunk | End | None = None
        self.next: Stub | None = None
        self.state = spec.toxic.new_state()
        self.task: asyncio.Task[None] | None = None
        self.end_kind: str | None = None
        self.closed = False
        self.active = False
        self.rng = _UNSEEDED  # replaced by a seeded generator in start()

    # -- used by the link ------------------------------------------------
    def start(self) -> None:
        spec = self.spec
        conn = self.link.conn
        self.rng = random.Random(
            f"{conn.proxy.seed}/{conn.proxy.name}/{conn.ordinal}/{self.link.direction}/{spec.name}/{spec.generation}"
        )
        self.active = spec.toxicity >= 1.0 or self.rng.random() < spec.toxicity
        from chaos.proxy.toxics.noop import NOOP

        toxic = spec.toxic if self.active else NOOP
        self.task = asyncio.get_running_loop().create_task(toxic.pipe(self))
        self.task.add_done_callback(self._done)

    def push(self, item: Chunk | End) -> None:
        if self.closed:
            if isinstance(item, Chunk):
                self.link.discard(len(item.data))
            return
        self.queue.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def interrupt(self) -> Chunk | End | None:
        """Stop the toxic; returns what it held (the queue stays)."""
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.waiter = None
        held, self.holding = self.holding, None
        return held

    def _done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("toxic %s failed on a connection of %s: %r", self.spec.name, self.link.conn.proxy.name, exc)
            self.close(CLOSE)
        elif not self.closed and self.task is task:
            self.close()

    # -- used by toxics ----------------------------------------------------
    async def recv(self, timeout: float | None = None) -> Chunk | None:
        """The next chunk, or None at the end of the stream (TIMED_OUT after ``timeout`` s)."""
        while not self.queue:
            loop = asyncio.get_running_loop()
            waiter = self.waiter = loop.create_future()
            timer = loop.call_later(timeout, lambda: waiter.done() or waiter.set_result(None)) if timeout else None
            try:
                await waiter
            finally:
                if self.waiter is waiter:
                    self.waiter = None
                if timer is not None:
                    timer.cancel()
            if timeout and not self.queue:
                return TIMED_OUT
        item = self.queue.popleft()
        self.holding = item
        if isinstance(item, End):
            self.end_kind = item.kind
            return None
        return item

    async def chunks(self) -> AsyncIterator[Chunk]:
        """Every chunk until the end of the stream, then the end is passed on:
        the loop most toxics are (``async for chunk in stub.chunks(): ...``)."""
        while True:
            chunk = await self.recv()
            if chunk is None:
                self.close()
                return
            yield chunk

    def send(self, chunk: Chunk) -> None:
        if self.holding is chunk:
            self.holding = None
        self._forward(chunk)

    def hold(self, chunk: Chunk | End | None) -> None:
        """Say what the toxic holds now (e.g. the rest of a chunk being sliced)."""
        self.holding = chunk

    def drop(self, chunk: Chunk) -> None:
        if self.holding is chunk:
            self.holding = None
        self.link.discard(len(chunk.data))

    def account(self, nbytes: int) -> None:
        """A toxic made ``nbytes`` new bytes out of dropped ones (e.g. a truncated chunk)."""
        self.link.buffered += nbytes

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await self.link.timer.sleep_until(time.monotonic() + seconds)

    async def sleep_until(self, when: float) -> None:
        await self.link.timer.sleep_until(when)

    def close(self, kind: str | None = None) -> None:
        """End the stream here: forwards the end (``kind`` or the one received)."""
        if self.closed:
            return
        self.closed = True
        self.holding = None
        kind = kind or self.end_kind or CLOSE
        dropped = sum(len(i.data) for i in self.queue if isinstance(i, Chunk))
        self.queue.clear()
        self.link.discard(dropped)
        self._forward(End(kind))

    def _forward(self, item: Chunk | End) -> None:
        nxt = self.next
        if nxt is not None:
            nxt.push(item)
        else:
            self.link.deliver(item)


class Link:
    """Bytes read from ``src`` and written to ``dst`` (one direction)."""

    def __init__(self, conn: Connection, direction: str, src: Side, dst: Side, counters: list[int]) -> None:
        self.conn = conn
        self.direction = direction
        self.src = src
        self.dst = dst
        self.counters = counters  # [received, sent] for the proxy and this direction
        self.stubs: list[Stub] = []
        self.head: Stub | None = None
        self.buffered = 0
        self.limit = 0
        self.timer = conn.proxy.timer

    # -- data ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.counters[0] += len(data)
        self.buffered += len(data)
        self.head.push(Chunk(data, time.monotonic()))  # type: ignore[union-attr]
        if self.buffered > self.limit:
            self.src.pause_reason(2, True)

    def feed_eof(self) -> None:
        if self.head is not None:
            self.head.push(End(EOF_))
        else:
            self.conn.end(self, EOF_)

    def deliver(self, item: Chunk | End) -> None:
        if isinstance(item, End):
            self.conn.end(self, item.kind)
            return
        n = len(item.data)
        self.buffered -= n
        self.counters[1] += n
        transport = self.dst.transport
        if transport is not None and not transport.is_closing():
            transport.write(item.data)
        if self.buffered <= self.limit // 2:
            self.src.pause_reason(2, False)

    def discard(self, nbytes: int) -> None:
        self.buffered -= nbytes
        if self.buffered <= self.limit // 2:
            self.src.pause_reason(2, False)

    # -- chain changes (called synchronously by the proxy) --------------------
    def _relimit(self) -> None:
        self.limit = max((s.spec.toxic.buffer_hint for s in self.stubs), default=0)

    def add(self, spec: ToxicSpec) -> None:
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
            stub._forward(held)  # flush what was in flight, as Toxiproxy does
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
            stub._forward(item)
        if not self.stubs:
            self.src.pause_reason(2, False)

    def stop(self) -> None:
        for stub in self.stubs:
            stub.interrupt()
            stub.closed = True
        self.stubs.clear()
        self.head = None
