"""A proxied TCP connection: the accepted client side, the dialled upstream
side, and one :class:`Link` per direction.

upstream = client -> server, downstream = server -> client (Toxiproxy's
names). An EOF is passed on as a half-close; the connection is closed when
both directions ended, when either side is lost, or when a toxic ends it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import TYPE_CHECKING

from chaos.proxy.link import CLOSE, EOF_, RESET, Link

if TYPE_CHECKING:
    from chaos.proxy.proxy import Proxy

_LINGER_ZERO = struct.pack("ii", 1, 0)
_EARLY_LIMIT = 256 * 1024  # bytes kept per side before the upstream answers


class _ReadBuffer:
    """One read buffer shared by every socket of the process (callbacks never
    interleave). A write the kernel does not take at once leaves uvloop holding
    a view of it, so the buffer is then handed over and a fresh one made."""

    size = 1 << 20

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.array = bytearray(self.size)
        self.view = memoryview(self.array)


_BUF = _ReadBuffer()
_SMALL = 64 * 1024  # reads up to this size are copied out instead


class Side(asyncio.BufferedProtocol):
    """One socket of the pair. ``out`` is the link it feeds, ``inp`` the link feeding it."""

    __slots__ = ("conn", "transport", "out", "inp", "paused", "reading_paused", "early")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.out: Link | None = None
        self.inp: Link | None = None
        self.paused = 0  # bit 1: the peer's write buffer is full; 2: the toxic chain is full; 4: not ready
        self.reading_paused = False
        self.early: list[bytes | None] | None = None  # read before the upstream answered; None = EOF

    def pause_reason(self, bit: int, on: bool) -> None:
        paused = (self.paused | bit) if on else (self.paused & ~bit)
        if paused == self.paused:
            return
        self.paused = paused
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if paused and not self.reading_paused:
            self.reading_paused = True
            transport.pause_reading()
        elif not paused and self.reading_paused:
            self.reading_paused = False
            transport.resume_reading()

    # -- asyncio.BufferedProtocol -----------------------------------------------
    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUF.view

    def buffer_updated(self, nbytes: int) -> None:
        link = self.out
        if link is not None and link.head is None:
            # fast path: no toxic in this direction; large reads are written from the
            # shared buffer (handed over to uvloop if it keeps a view of it)
            counters = link.counters
            counters[0] += nbytes
            counters[1] += nbytes
            transport = link.dst.transport
            if nbytes <= _SMALL:
                # uvloop defers small writes to the end of the loop iteration,
                # keeping a view: a small copy is cheaper than a new buffer
                transport.write(_BUF.array[:nbytes])  # type: ignore[union-attr]
            else:
                transport.write(_BUF.view[:nbytes])  # type: ignore[union-attr]
                if transport.get_write_buffer_size():  # type: ignore[union-attr]
                    _BUF.renew()
        else:
            self.data_received(bytes(_BUF.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        link = self.out
        if link is None:  # still dialling the upstream: keep it (bounded by pausing)
            if self.early is None:
                self.early = []
            self.early.append(data)
            if sum(len(d) for d in self.early if d) > _EARLY_LIMIT:
                self.pause_reason(4, True)
            return
        if link.head is None:
            # fast path: no toxic in this direction
            counters = link.counters  # type: ignore[union-attr]
            counters[0] += len(data)
            counters[1] += len(data)
            link.dst.transport.write(data)  # type: ignore[union-attr]
        else:
            link.feed(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        if self.out is not None:
            self.out.feed_eof()
        else:
            if self.early is None:
                self.early = []
            self.early.append(None)
        return True  # keep our write side open: the other direction may still flow

    def pause_writing(self) -> None:
        if self.inp is not None:
            self.inp.src.pause_reason(1, True)

    def resume_writing(self) -> None:
        if self.inp is not None:
            self.inp.src.pause_reason(1, False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(self, exc)


class ClientSide(Side):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # reading is not paused while the upstream is dialled: early bytes are
        # kept in ``early`` instead (two fewer epoll changes per connection)
        self.transport = transport  # type: ignore[assignment]


class UpstreamSide(Side):
    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]


class Connection:
    __slots__ = ("proxy", "ordinal", "client", "upstream", "links", "ended", "closed", "dial")

    def __init__(self, proxy: Proxy, ordinal: int) -> None:
        self.proxy = proxy
        self.ordinal = ordinal
        self.client = ClientSide(self)
        self.upstream: UpstreamSide | None = None
        self.links: dict[str, Link] = {}
        self.ended: set[str] = set()
        self.closed = False
        self.dial: asyncio.Task[None] | None = None

    def adopt(self, client: socket.socket, upstream: socket.socket | None,
              carried: dict[str, tuple[bytes, bool]]) -> None:
        """Take over sockets accepted (and perhaps connected) elsewhere.

        ``carried`` maps a direction to the bytes already read but not yet
        written, and whether its end was already passed on (see relay.py).
        """
        self.proxy.connections.add(self)
        self.dial = asyncio.get_running_loop().create_task(self._adopt(client, upstream, carried))

    async def _adopt(self, client: socket.socket, upstream_sock: socket.socket | None,
                     carried: dict[str, tuple[bytes, bool]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: self.client, client)
            if upstream_sock is None:
                host, port = await self.proxy.dial_target()
                _, upstream = await loop.create_connection(lambda: UpstreamSide(self), host, port)
            else:
                _, upstream = await loop.connect_accepted_socket(lambda: UpstreamSide(self), upstream_sock)
        except (OSError, ValueError):
            # Toxiproxy accepts, then closes when the upstream cannot be reached
            if upstream_sock is not None:
                upstream_sock.close()
            if self.client.transport is None:
                client.close()
            self.close(CLOSE)
            return
        finally:
            self.dial = None
        if self.closed:
            upstream.transport.abort()  # type: ignore[union-attr]
            return
        self._join(upstream, carried)  # type: ignore[arg-type]

    def _join(self, upstream: UpstreamSide, carried: dict[str, tuple[bytes, bool]]) -> None:
        """Both sides are transports: build the links and let the bytes flow."""
        self.upstream = upstream
        proxy = self.proxy
        for direction, (data, ended) in carried.items():
            # read before any toxic existed: written first, as they would have been
            dst = upstream if direction == "upstream" else self.client
            if data:
                proxy.counters[direction][1] += len(data)
                dst.transport.write(data)  # type: ignore[union-attr]
            if ended:
                self.ended.add(direction)
        up = Link(self, "upstream", self.client, upstream, proxy.counters["upstream"])  # type: ignore[arg-type]
        down = Link(self, "downstream", upstream, self.client, proxy.counters["downstream"])  # type: ignore[arg-type]
        self.client.out = up
        self.client.inp = down
        upstream.out = down  # type: ignore[union-attr]
        upstream.inp = up  # type: ignore[union-attr]
        self.links = {"upstream": up, "downstream": down}
        for spec in proxy.toxics["upstream"]:
            up.add(spec)
        for spec in proxy.toxics["downstream"]:
            down.add(spec)
        for side in (self.client, upstream):
            # bytes the loop read before the links existed go first
            early, side.early = side.early, None
            for data in early or ():
                if data is None:
                    side.eof_received()
                else:
                    side.data_received(data)
        if not self.closed:
            self.client.pause_reason(4, False)
            upstream.pause_reason(4, False)

    def end(self, link: Link, kind: str) -> None:
        """The end of ``link``'s stream reached its destination."""
        if self.closed:
            return
        if kind == EOF_:
            if link.direction in self.ended:  # passed on before this connection was adopted
                return
            self.ended.add(link.direction)
            transport = link.dst.transport
            if len(self.ended) == 2 or transport is None:
                self.close(CLOSE)
            elif transport.can_write_eof() and not transport.is_closing():
                transport.write_eof()
            else:
                self.close(CLOSE)
        else:
            self.close(kind)

    def lost(self, side: Side, exc: Exception | None) -> None:
        if not self.closed:
            self.close(CLOSE)
        self.proxy.connections.discard(self)

    def close(self, kind: str = CLOSE) -> None:
        """Close both sides: gracefully (pending bytes flushed), or with RST for ``reset``."""
        if self.closed:
            return
        self.closed = True
        if self.dial is not None:
            self.dial.cancel()
        for link in self.links.values():
            link.stop()
        for side in (self.client, self.upstream):
            transport = side.transport if side is not None else None
            if transport is None or transport.is_closing():
                continue
            if kind == RESET:
                sock = transport.get_extra_info("socket")
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                except (OSError, AttributeError):
                    pass
                transport.abort()
            elif kind == "cut":
                transport.abort()
            else:
                transport.close()
        self.proxy.connections.discard(self)
