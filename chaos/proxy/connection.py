"""The toxic path: a proxied TCP connection on asyncio transports, the
accepted client side, the dialled upstream side, and one :class:`Link` per
direction.

upstream = client -> server, downstream = server -> client (Toxiproxy's
names). An EOF is passed on as a half-close, after every byte before it
(with the toxics' timing). A side that is lost (reset, abort, error) ends
like an EOF too: what it sent and the chain still holds is delivered, then
the other side is closed; bytes heading to the lost side are dropped, as no
one can receive them. A toxic that closes its stream (limit_data, timeout)
closes that stream's destination the same way. The connection is closed
when both directions ended, when reset_peer fires, or when the proxy stops.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import struct

from chaos.proxy.flow import ChainChange, ProxyView
from chaos.proxy.link import Link
from chaos.proxy.toxics.base import Direction, End, ToxicSpec

_LINGER_ZERO = struct.pack("ii", 1, 0)
_EARLY_LIMIT = 256 * 1024  # bytes kept per side before the upstream answers


class Pause(enum.Flag):
    """Why a side's reading is paused; it reads again when no reason is left."""

    NONE = 0
    PEER_FULL = enum.auto()  # the other side's write buffer is full
    CHAIN_FULL = enum.auto()  # the toxic chain holds its limit
    NOT_READY = enum.auto()  # the upstream is still being dialled


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

    __slots__ = ("conn", "transport", "out", "inp", "paused", "early")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.out: Link[Side] | None = None
        self.inp: Link[Side] | None = None
        self.paused = Pause.NONE
        self.early: list[bytes | None] | None = None  # read before the upstream answered; None = EOF

    def pause(self, reason: Pause, on: bool) -> None:
        paused = (self.paused | reason) if on else (self.paused & ~reason)
        if paused == self.paused:
            return
        was, self.paused = self.paused, paused
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if paused and not was:
            transport.pause_reading()
        elif was and not paused:
            transport.resume_reading()

    def hold_back(self, on: bool) -> None:
        """The link this side feeds is full (or no longer)."""
        self.pause(Pause.CHAIN_FULL, on)

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
                self.pause(Pause.NOT_READY, True)
            return
        if link.head is None:
            # fast path: no toxic in this direction
            counters = link.counters
            counters[0] += len(data)
            counters[1] += len(data)
            link.dst.transport.write(data)  # type: ignore[union-attr]
        else:
            link.feed(data)

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
            self.inp.src.pause(Pause.PEER_FULL, True)

    def resume_writing(self) -> None:
        if self.inp is not None:
            self.inp.src.pause(Pause.PEER_FULL, False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # reading is not paused while the upstream is dialled: early bytes are
        # kept in ``early`` instead (two fewer epoll changes per connection)
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.lost(self)


class Connection:
    """A proxied connection on the toxic path (a :class:`~chaos.proxy.flow.Flow`)."""

    __slots__ = ("proxy", "ordinal", "client", "upstream", "links", "ended", "gone", "closed", "dial")

    def __init__(self, proxy: ProxyView, ordinal: int) -> None:
        self.proxy = proxy
        self.ordinal = ordinal
        self.client = Side(self)
        self.upstream: Side | None = None
        self.links: dict[Direction, Link[Side]] = {}
        self.ended: set[Direction] = set()  # directions whose end reached their destination
        self.gone: set[Side] = set()  # sides lost (reset, abort, error): they read and take nothing more
        self.closed = False
        self.dial: asyncio.Task[None] | None = None

    def adopt(self, client: socket.socket, upstream: socket.socket | None,
              carried: dict[Direction, tuple[bytes, bool]]) -> None:
        """Take over sockets accepted (and perhaps connected) elsewhere.

        ``carried`` maps a direction to the bytes already read but not yet
        written, and whether its end was already passed on (see relay.py).
        """
        self.proxy.connections.add(self)
        self.dial = asyncio.get_running_loop().create_task(self._adopt(client, upstream, carried))

    async def _adopt(self, client: socket.socket, upstream_sock: socket.socket | None,
                     carried: dict[Direction, tuple[bytes, bool]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: self.client, client)
            if upstream_sock is None:
                host, port = await self.proxy.dial_target()
                _, upstream = await loop.create_connection(lambda: Side(self), host, port)
            else:
                _, upstream = await loop.connect_accepted_socket(lambda: Side(self), upstream_sock)
        except (OSError, ValueError):
            # Toxiproxy accepts, then closes when the upstream cannot be reached
            if upstream_sock is not None:
                upstream_sock.close()
            if self.client.transport is None:
                client.close()
            self.close(End.CLOSE)
            return
        finally:
            self.dial = None
        if self.closed:
            upstream.transport.abort()  # type: ignore[union-attr]
            return
        self._join(upstream, carried)

    def _join(self, upstream: Side, carried: dict[Direction, tuple[bytes, bool]]) -> None:
        """Both sides are transports: build the links and let the bytes flow."""
        self.upstream = upstream
        proxy = self.proxy
        client = self.client
        for direction, (data, ended) in carried.items():
            # read before any toxic existed: written first, as they would have been
            dst = upstream if direction is Direction.UPSTREAM else client
            if data and dst not in self.gone:
                proxy.counters[direction][1] += len(data)
                dst.transport.write(data)  # type: ignore[union-attr]
            if ended:
                self.ended.add(direction)
        up = Link(self, Direction.UPSTREAM, client, upstream, proxy.counters[Direction.UPSTREAM])
        down = Link(self, Direction.DOWNSTREAM, upstream, client, proxy.counters[Direction.DOWNSTREAM])
        client.out = up
        client.inp = down
        upstream.out = down
        upstream.inp = up
        self.links = {Direction.UPSTREAM: up, Direction.DOWNSTREAM: down}
        for direction, link in self.links.items():
            if direction in self.ended:
                link.eof_fed = True
            for spec in proxy.toxics[direction]:
                link.add(spec)
        for side in self.gone:  # lost while the upstream was dialled: nothing reaches it
            side.inp.sever()  # type: ignore[union-attr]
        for side in (client, upstream):
            # bytes the loop read before the links existed go first
            early, side.early = side.early, None
            for piece in early or ():
                if piece is None:
                    side.eof_received()
                else:
                    side.data_received(piece)
        for side in list(self.gone):  # lost while the upstream was dialled
            self._side_gone(side)
        if not self.closed:
            client.pause(Pause.NOT_READY, False)
            upstream.pause(Pause.NOT_READY, False)

    # -- Flow ----------------------------------------------------------------------
    def toxic_changed(self, change: ChainChange, spec: ToxicSpec) -> None:
        link = self.links.get(spec.direction)
        if link is None or self.closed:
            return  # not joined yet: the links are built from the proxy's toxics then
        if change is ChainChange.ADDED:
            link.add(spec)
        elif change is ChainChange.UPDATED:
            link.update(spec)
        else:
            link.remove(spec)

    # -- ends ----------------------------------------------------------------------
    def end(self, link: Link[Side], end: End) -> None:
        """The end of ``link``'s stream reached its destination."""
        if self.closed:
            return
        if end is End.CLOSE:
            self._close_destination(link)
            return
        if end is not End.EOF:
            self.close(end)
            return
        if link.direction in self.ended:  # passed on before this connection was adopted
            return
        self.ended.add(link.direction)
        transport = link.dst.transport
        if len(self.ended) == 2 or link.src in self.gone or transport is None:
            self.close(End.CLOSE)  # nothing more can flow either way
        elif transport.can_write_eof() and not transport.is_closing():
            transport.write_eof()
        else:
            self.close(End.CLOSE)

    def _close_destination(self, link: Link[Side]) -> None:
        """A toxic closed ``link`` (limit_data, timeout): as in Toxiproxy, its
        destination is closed (flushed), and the other direction, whose source
        that was, still delivers what its chain holds, then ends."""
        self.ended.add(link.direction)
        dst = link.dst
        transport = dst.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if dst not in self.gone:
            self.gone.add(dst)
            self._side_gone(dst)

    def lost(self, side: Side) -> None:
        """A side's transport is gone. Ours closing it is the end; the peer's
        reset or an error is that side's end of the stream (see the module doc)."""
        if self.closed or side in self.gone:
            return
        self.gone.add(side)
        if not self.links:
            if side is self.client and self.dial is not None:
                if self.client.early is None:
                    self.client.early = []
                self.client.early.append(None)  # joined later: its bytes still go up
                return
            self.close(End.CLOSE)
            return
        self._side_gone(side)

    def _side_gone(self, side: Side) -> None:
        if len(self.gone) == 2:
            self.close(End.CLOSE)
            return
        inp = side.inp
        if inp is not None:
            inp.sever()  # bytes heading to it can never arrive
            inp.src.pause(Pause.PEER_FULL, False)  # its write buffer will not drain
        out = side.out
        if out is None:
            return
        if out.direction in self.ended:
            self.close(End.CLOSE)  # its end was passed on already: nothing more to deliver
        else:
            out.feed_eof()  # delivered behind its last bytes, then the other side is closed

    def close(self, end: End = End.CLOSE) -> None:
        """Close both sides: flushed (``CLOSE``, ``EOF``), dropped (``CUT``) or with RST (``RESET``)."""
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
            if end is End.RESET:
                sock = transport.get_extra_info("socket")
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                except (OSError, AttributeError):
                    pass
                transport.abort()
            elif end is End.CUT:
                transport.abort()
            else:
                transport.close()
        self.proxy.connections.discard(self)
