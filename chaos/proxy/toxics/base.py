"""The toxic contract, as Toxiproxy's ``toxics/toxic.go``: what a toxic is,
what flows through it and how it is registered.

A toxic type is one module in this package holding a :class:`Toxic`
subclass decorated with :func:`register`. It declares its attributes (JSON
name -> Go integer type, all defaulting to 0 as in Toxiproxy) and implements
``pipe(stub)``: the stage one link runs for it. The same toxic object serves
every connection; per-connection state lives on the :class:`Stub`
(``stub.state``), as in Toxiproxy.

A stub talks to its link only through :class:`Outlet`, so toxics never
import the link (no import cycle).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Final, Protocol, TypeVar

from chaos.proxy.gojson import Float32

log = logging.getLogger("chaos.proxy")


class Direction(enum.Enum):
    """Toxiproxy's stream: upstream = client -> server, downstream = server -> client."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"

    @classmethod
    def parse(cls, text: str) -> Direction | None:
        """As Toxiproxy's ``stream.ParseDirection``: case-insensitive."""
        try:
            return cls(text.lower())
        except ValueError:
            return None


DIRECTIONS: Final = (Direction.UPSTREAM, Direction.DOWNSTREAM)  # Toxiproxy lists upstream first


class End(enum.Enum):
    """How a stream ends; travels down a toxic chain behind the stream's bytes."""

    EOF = "eof"  # the source finished (or is gone): pass the end on after every byte
    CLOSE = "close"  # a toxic ends the connection: close both ways, flushed (limit_data, timeout)
    RESET = "reset"  # reset_peer: abort both ways with a TCP RST
    CUT = "cut"  # the proxy stopped or was deleted: drop both ways at once


class Chunk:
    __slots__ = ("data", "ts")

    def __init__(self, data: bytes | memoryview, ts: float) -> None:
        self.data = data
        self.ts = ts  # when it was read (latency counts from here)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _TimedOut:
    def __repr__(self) -> str:
        return "TIMED_OUT"


TIMED_OUT: Final = _TimedOut()  # what Stub.recv returns when its timeout passed first
_UNSEEDED = random.Random(0)


class Timer(Protocol):
    async def sleep_until(self, when: float) -> None: ...


class Outlet(Protocol):
    """What a stub needs of the link it belongs to (implemented by link.Link)."""

    timer: Timer
    rng_key: str  # seed, proxy, connection and direction: each stub's generator derives from it

    def deliver(self, item: Chunk | End) -> None: ...
    def discard(self, nbytes: int) -> None: ...
    def account(self, nbytes: int) -> None: ...
    def failed(self, stub: Stub, exc: BaseException) -> None: ...


class ToxicSpec:
    """A toxic as the API shows it; shared by every link of its proxy."""

    __slots__ = ("name", "type", "stream", "direction", "toxicity", "toxic", "generation")

    def __init__(self, name: str, type_: str, stream: str, direction: Direction, toxicity: float,
                 toxic: Toxic) -> None:
        self.name = name
        self.type = type_
        self.stream = stream  # as given (Toxiproxy echoes "UPSTREAM" as it came)
        self.direction = direction
        self.toxicity = toxicity  # a float32 value, as Toxiproxy keeps it
        self.toxic = toxic
        self.generation = 0  # bumped on update: toxicity is drawn again

    def as_json(self) -> dict[str, Any]:
        return {
            "attributes": self.toxic.as_json(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": Float32(self.toxicity),
        }


class Toxic:
    type_name: ClassVar[str] = ""
    go_type: ClassVar[str] = ""  # Toxiproxy's Go type, named in decode errors ("LatencyToxic")
    # JSON attribute -> Go integer type ("int64" or "int"); every default is 0
    fields: ClassVar[dict[str, str]] = {}
    # bytes this stage may hold per connection before the reader is paused
    buffer_hint: ClassVar[int] = 256 * 1024

    def __init__(self, **values: int) -> None:
        for key in self.fields:
            setattr(self, key, values.get(key, 0))

    def as_json(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in self.fields}

    def mistakes(self) -> list[str]:
        """Values Toxiproxy accepts that are surely a mistake (logged as warnings)."""
        return [f"{key} is negative ({getattr(self, key)})" for key in self.fields if getattr(self, key) < 0]

    def new_state(self) -> Any:
        """Per connection and direction state, kept while the toxic exists."""
        return None

    async def pipe(self, stub: Stub) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def cleanup(self, stub: Stub) -> bool:
        """Called when the toxic is removed from a live link; True = the link was closed."""
        return False


REGISTRY: dict[str, type[Toxic]] = {}
T = TypeVar("T", bound=type[Toxic])


def register(cls: T) -> T:
    """Make a toxic type available by its ``type_name`` (Toxiproxy's ``Register``)."""
    REGISTRY[cls.type_name] = cls
    return cls


async def passthrough(stub: Stub) -> None:
    """Pass everything on: the noop toxic, and any toxic whose toxicity missed."""
    async for chunk in stub.chunks():
        stub.send(chunk)


class Stub:
    """A toxic's view of one link: its input queue and its way out."""

    __slots__ = ("outlet", "spec", "queue", "waiter", "holding", "next", "state", "task", "end_kind",
                 "closed", "active", "rng")

    def __init__(self, outlet: Outlet, spec: ToxicSpec) -> None:
        self.outlet = outlet
        self.spec = spec
        self.queue: deque[Chunk | End] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.holding: Chunk | End | None = None
        self.next: Stub | None = None
        self.state = spec.toxic.new_state()
        self.task: asyncio.Task[None] | None = None
        self.end_kind: End | None = None
        self.closed = False
        self.active = False
        self.rng = _UNSEEDED  # replaced by a seeded generator in start()

    # -- used by the link ------------------------------------------------
    def start(self) -> None:
        spec = self.spec
        self.rng = random.Random(f"{self.outlet.rng_key}/{spec.name}/{spec.generation}")
        # Toxiproxy: rand.Float32() < toxicity (so 1 and above always, 0 and below never)
        self.active = spec.toxicity >= 1.0 or self.rng.random() < spec.toxicity
        pipe = spec.toxic.pipe(self) if self.active else passthrough(self)
        self.task = asyncio.get_running_loop().create_task(pipe)
        self.task.add_done_callback(self._done)

    def push(self, item: Chunk | End) -> None:
        if self.closed:
            if isinstance(item, Chunk):
                self.outlet.discard(len(item.data))
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
            self.outlet.failed(self, exc)
            self.close(End.CLOSE)
        elif not self.closed and self.task is task:
            self.close()

    # -- used by toxics ----------------------------------------------------
    async def recv(self, timeout: float | None = None) -> Chunk | _TimedOut | None:
        """The next chunk, or None at the end of the stream (TIMED_OUT after ``timeout`` s)."""
        while not self.queue:
            loop = asyncio.get_running_loop()
            waiter = self.waiter = loop.create_future()
            timer = loop.call_later(timeout, lambda: _wake(waiter)) if timeout else None
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
            self.end_kind = item
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
            yield chunk  # type: ignore[misc]  # no timeout given: never TIMED_OUT

    def send(self, chunk: Chunk) -> None:
        if self.holding is chunk:
            self.holding = None
        self._forward(chunk)

    def hold(self, item: Chunk | End | None) -> None:
        """Say what the toxic holds now (e.g. the rest of a chunk being sliced):
        it is passed on if the toxic is updated or removed meanwhile."""
        self.holding = item

    def drop(self, chunk: Chunk) -> None:
        if self.holding is chunk:
            self.holding = None
        self.outlet.discard(len(chunk.data))

    def account(self, nbytes: int) -> None:
        """A toxic made ``nbytes`` new bytes out of dropped ones (e.g. a truncated chunk)."""
        self.outlet.account(nbytes)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await self.outlet.timer.sleep_until(time.monotonic() + seconds)

    async def sleep_until(self, when: float) -> None:
        await self.outlet.timer.sleep_until(when)

    async def forever(self) -> None:
        """Wait until the toxic is updated or removed (what holds is then passed on)."""
        await asyncio.get_running_loop().create_future()

    def close(self, end: End | None = None) -> None:
        """End the stream here: forwards ``end`` (or the end received); queued bytes are dropped."""
        if self.closed:
            return
        self.closed = True
        self.holding = None
        end = end or self.end_kind or End.CLOSE
        dropped = sum(len(i.data) for i in self.queue if isinstance(i, Chunk))
        self.queue.clear()
        self.outlet.discard(dropped)
        self._forward(end)

    def forward(self, item: Chunk | End) -> None:
        """Hand ``item`` to the next stage untouched (the link uses it when re-plumbing)."""
        self._forward(item)

    def _forward(self, item: Chunk | End) -> None:
        nxt = self.next
        if nxt is not None:
            nxt.push(item)
        else:
            self.outlet.deliver(item)
