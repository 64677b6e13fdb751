"""The fast path: a connection of a proxy with no toxic, relayed on raw sockets.

A connection accepted while its proxy has no toxic needs no toxic chain, so
it is not given asyncio transports at all: the loop watches both sockets and
each :class:`Pump` moves one direction's bytes itself. Small reads go through
one shared buffer; once a read fills that buffer (a bulk flow) the direction
switches to ``os.splice`` through a pipe, so its bytes never enter Python
(about 0.3 s of proxy CPU per GB instead of 0.75 s with transports here).

A peer that resets or aborts ends its direction like an EOF: what was read
from it and not yet written is still written, then the connection closes;
bytes heading to it are dropped (no one can receive them).

When a toxic is added to the proxy, each relayed connection is *promoted*:
both sockets stop being watched at once (so no byte passes the new toxic
unseen), what was read but not yet written is taken out, and the sockets are
handed to the transport path (:class:`chaos.proxy.connection.Connection`),
which writes those bytes first, then reads on through the toxic chain.
"""

from __future__ import annotations

import _socket
import asyncio
import errno
import fcntl
import os
import socket
import struct
from typing import TYPE_CHECKING, overload

from chaos.proxy.connection import Connection
from chaos.proxy.flow import ChainChange, ProxyView
from chaos.proxy.poller import PEER_ENDED
from chaos.proxy.toxics.base import Direction, End, ToxicSpec

if TYPE_CHECKING:
    from chaos.proxy.poller import Poller

_SPLICE = hasattr(os, "splice")
_SPLICE_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if _SPLICE else 0
_F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20  # bytes one splice may move; Linux's default pipe-max-size
_BUF = bytearray(64 * 1024)  # shared: callbacks never interleave
_VIEW = memoryview(_BUF)
_TRY_AGAIN = (BlockingIOError, InterruptedError)
_SPLICES_PER_WAKEUP = 4  # splices one readable bulk socket gets before the others get a turn
_LINGER_ZERO = struct.pack("ii", 1, 0)


@overload
def _full(sock: _socket.socket) -> socket.socket: ...
@overload
def _full(sock: None) -> None: ...
def _full(sock: _socket.socket | None) -> socket.socket | None:
    """The same connection as a ``socket.socket``, as asyncio's transports want it.

    The relay holds the C-level ``_socket.socket``: socket.socket's Python
    layer (accept, __init__, close) costs ~10 µs per connection."""
    if sock is None:
        return None
    family = sock.family
    return socket.socket(family, socket.SOCK_STREAM, 0, sock.detach())


class _PipePool:
    """Empty pipes kept for the next bulk flow (creating one costs 3 syscalls)."""

    def __init__(self, keep: int = 32) -> None:
        self.keep = keep
        self.free: list[tuple[int, int]] = []

    def get(self) -> tuple[int, int]:
        if self.free:
            return self.free.pop()
        r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # over the user's pipe quota: the default size still works
            pass
        return r, w

    def put(self, pipe: tuple[int, int], empty: bool) -> None:
        if empty and len(self.free) < self.keep:
            self.free.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])


PIPES = _PipePool()


class Pump:
    """One direction: bytes read from ``src`` are written to ``dst``."""

    __slots__ = ("relay", "direction", "src", "dst", "sfd", "dfd", "counters",
                 "pending", "pipe", "inpipe", "eof", "lost", "shut", "dead", "reading", "writing")

    def __init__(self, relay: Relay, direction: Direction, src: _socket.socket, dst: _socket.socket) -> None:
        self.relay = relay
        self.direction = direction
        self.src = src
        self.dst = dst
        self.sfd = src.fileno()
        self.dfd = dst.fileno()
        self.counters = relay.proxy.counters[direction]  # [received, sent]
        self.pending = b""  # read, not yet written (copy mode)
        self.pipe: tuple[int, int] | None = None  # set once the flow is bulk (splice mode)
        self.inpipe = 0  # bytes in the pipe, not yet written
        self.eof = False  # src ended
        self.lost = False  # ... with an error (reset, abort): it takes no more bytes either
        self.shut = False  # ... and that end was passed on to dst
        self.dead = False  # dst is gone: this direction can deliver nothing more
        self.reading = False
        self.writing = False

    def start(self) -> None:
        self.reading = True
        self.relay.poller.set_reader(self.sfd, self.readable)

    def readable(self) -> None:
        if self.pipe is not None:
            self._splice_in()
            return
        try:
            n = self.src.recv_into(_BUF)
        except _TRY_AGAIN:
            return
        except OSError:
            self._ended(lost=True)
            return
        if n == 0:
            self._ended()
            return
        self.counters[0] += n
        try:
            sent = self.dst.send(_VIEW[:n])
        except _TRY_AGAIN:
            sent = 0
        except OSError:
            self._dst_gone()
            return
        self.counters[1] += sent
        if sent < n:
            self.pending = bytes(_VIEW[sent:n])
            self._wait_for_dst()
        elif n == len(_BUF) and _SPLICE:
            self.pipe = PIPES.get()  # a bulk flow: from now on the bytes stay in the kernel
        elif self.relay.poller.events & PEER_ENDED:
            # the peer's end came with these bytes: pass it on now, right behind
            # them, rather than after another turn of the loop
            self.relay.poller.events = 0
            self.readable()

    def _splice_in(self) -> None:
        for _ in range(_SPLICES_PER_WAKEUP):
            try:
                n = os.splice(self.sfd, self.pipe[1], PIPE_SIZE, flags=_SPLICE_FLAGS)  # type: ignore[index]
            except _TRY_AGAIN:
                return
            except OSError:
                self._ended(lost=True)
                return
            if n == 0:
                self._ended()
                return
            self.counters[0] += n
            self.inpipe += n
            if not self._splice_out():
                self._wait_for_dst()
                return
            if self.relay.closed or self.dead:
                return

    def _splice_out(self) -> bool:
        """Write the pipe to dst; False when dst cannot take it all now."""
        try:
            while self.inpipe:
                m = os.splice(self.pipe[0], self.dfd, self.inpipe, flags=_SPLICE_FLAGS)  # type: ignore[index]
                self.inpipe -= m
                self.counters[1] += m
        except _TRY_AGAIN:
            return False
        except OSError:
            self._dst_gone()
            return True
        return True

    def _wait_for_dst(self) -> None:
        if self.reading:
            self.reading = False
            self.relay.poller.set_reader(self.sfd, None)
        if not self.writing:
            self.writing = True
            self.relay.poller.set_writer(self.dfd, self.writable)

    def writable(self) -> None:
        if self.pending:
            try:
                sent = self.dst.send(self.pending)
            except _TRY_AGAIN:
                return
            except OSError:
                self._dst_gone()
                return
            self.counters[1] += sent
            self.pending = self.pending[sent:]
            if self.pending:
                return
        if self.inpipe and not self._splice_out():
            return
        if self.relay.closed or self.dead:
            return
        self.writing = False
        self.relay.poller.set_writer(self.dfd, None)
        if self.eof:
            self._pass_end()
        else:
            self.start()

    def _ended(self, lost: bool = False) -> None:
        """src sent its last byte (an EOF, or an error when ``lost``)."""
        if self.relay.closed:
            return
        self.eof = True
        other = self.relay.other(self)
        if lost:
            self.lost = True
            other.stop()  # bytes heading to src can never arrive
        if (other.shut or other.dead) and not self.pending and not self.inpipe:
            self.relay.close()  # both ways ended: closing unwatches the sockets anyway
            return
        if self.reading:
            self.reading = False
            self.relay.poller.set_reader(self.sfd, None)
        if not self.pending and not self.inpipe:
            self._pass_end()

    def _pass_end(self) -> None:
        """src ended and everything it sent was written: half-close dst (or
        close both when nothing can flow the other way any more)."""
        self.shut = True
        other = self.relay.other(self)
        if other.shut or other.dead or self.lost:
            self.relay.close()
            return
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            self.relay.close()

    def _dst_gone(self) -> None:
        """Writing to dst failed: it is gone; what it sent before may still be read."""
        self.stop()
        other = self.relay.other(self)
        if other.shut or other.lost and not other.pending and not other.inpipe:
            self.relay.close()

    def stop(self) -> None:
        """This direction can deliver nothing more: drop what it holds; src is
        still read (and dropped), so that closing it later sends FIN, not a
        RST that would throw away what the kernel still has to send it."""
        self.dead = True
        self.pending = b""
        if self.writing:
            self.writing = False
            self.relay.poller.set_writer(self.dfd, None)
        self.release()
        self.reading = not self.eof
        self.relay.poller.set_reader(self.sfd, self.drain if self.reading else None)

    def drain(self) -> None:
        """Read src and drop it (this direction is dead)."""
        for _ in range(16):
            try:
                n = self.src.recv_into(_BUF)
            except _TRY_AGAIN:
                return
            except OSError:
                n = 0
            if n == 0:
                self.eof = True
                if self.reading:
                    self.reading = False
                    self.relay.poller.set_reader(self.sfd, None)
                return
            self.counters[0] += n

    def unwatch(self) -> None:
        self.reading = self.writing = False

    def take_unwritten(self) -> bytes:
        """What was read but not written yet (the pipe is emptied into it)."""
        data = [self.pending]
        self.pending = b""
        while self.inpipe and self.pipe is not None:
            try:
                chunk = os.read(self.pipe[0], self.inpipe)
            except OSError:
                break
            if not chunk:
                break
            data.append(chunk)
            self.inpipe -= len(chunk)
        return b"".join(data)

    def release(self) -> None:
        if self.pipe is not None:
            PIPES.put(self.pipe, empty=self.inpipe == 0)
            self.pipe = None
            self.inpipe = 0


class Relay:
    """A proxied connection on the fast path (no toxic on its proxy); a
    :class:`~chaos.proxy.flow.Flow`."""

    __slots__ = ("proxy", "ordinal", "loop", "poller", "client", "upstream", "pumps", "closed", "dial")

    def __init__(self, proxy: ProxyView, ordinal: int, client: _socket.socket, loop: asyncio.AbstractEventLoop,
                 poller: Poller) -> None:
        self.proxy = proxy
        self.ordinal = ordinal
        self.loop = loop
        self.poller = poller
        self.client = client
        self.upstream: _socket.socket | None = None
        self.pumps: tuple[Pump, Pump] | None = None
        self.closed = False
        self.dial: asyncio.Task[None] | None = None
        proxy.connections.add(self)

    # -- dialling the upstream -----------------------------------------------------
    def start(self) -> None:
        target = self.proxy.cached_target()
        if target is not None:
            self._connect(target)
        else:  # a name to resolve first
            self.dial = self.loop.create_task(self._resolve_then_connect())

    async def _resolve_then_connect(self) -> None:
        try:
            target = await self.proxy.dial_target()
        except OSError:
            self.close()
            return
        finally:
            self.dial = None
        if not self.closed:
            self._connect(target)

    def _connect(self, target: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        try:
            sock = _socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)  # non-blocking: one syscall less
        except OSError:
            self.close()
            return
        self.upstream = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        err = sock.connect_ex(target)
        if err == errno.EINPROGRESS:
            # on loopback the handshake is often done before connect returns:
            # asking again costs one syscall and saves a wake-up
            err = sock.connect_ex(target)
            if err == errno.EISCONN:
                err = 0
            elif err in (errno.EALREADY, errno.EINPROGRESS):
                self.poller.set_writer(sock.fileno(), self._connected)
                return
        if err:
            self.close()  # Toxiproxy accepts, then closes when the upstream cannot be reached
            return
        self._connected(checked=True)

    def _connected(self, checked: bool = False) -> None:
        sock: _socket.socket = self.upstream  # type: ignore[assignment]
        if not checked and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.close()
            return
        up, down = self.pumps = (Pump(self, Direction.UPSTREAM, self.client, sock),
                                 Pump(self, Direction.DOWNSTREAM, sock, self.client))
        up.reading = down.reading = True
        self.poller.set_reader(up.sfd, up.readable)
        self.poller.watch(down.sfd, down.readable, None)  # was watched for the connect: one change
        # the client usually spoke right after connecting: read now rather than after another wake-up
        self.poller.events = 0
        up.readable()

    def other(self, pump: Pump) -> Pump:
        return self.pumps[1] if pump is self.pumps[0] else self.pumps[0]  # type: ignore[index]

    # -- Flow -------------------------------------------------------------------------
    def toxic_changed(self, change: ChainChange, spec: ToxicSpec) -> None:
        if change is ChainChange.ADDED:
            self.promote()
        # updates and removals: no chain here (a relay only exists while its proxy has no toxic)

    # -- leaving the fast path -------------------------------------------------------
    def promote(self) -> None:
        """A toxic was added: hand both sockets to the transport path."""
        if self.closed:
            return
        if self.pumps is not None and any(p.lost or p.dead for p in self.pumps):
            return  # a peer is gone: this connection only drains what it holds, then ends
        if self.pumps is None:  # still dialling: simplest to start over on the transport path
            self._unwatch()
            self.proxy.connections.discard(self)
            self.closed = True
            Connection(self.proxy, self.ordinal).adopt(_full(self.client), None, {})
            if self.upstream is not None:
                self.upstream.close()
            return
        self._unwatch()
        carried: dict[Direction, tuple[bytes, bool]] = {}
        for pump in self.pumps:
            carried[pump.direction] = (pump.take_unwritten(), pump.shut)
            pump.release()
        self.closed = True
        self.proxy.connections.discard(self)
        Connection(self.proxy, self.ordinal).adopt(_full(self.client), _full(self.upstream), carried)

    def _unwatch(self, closing: bool = False) -> None:
        if self.dial is not None:
            self.dial.cancel()
            self.dial = None
        for pump in self.pumps or ():
            pump.unwatch()
        for sock in (self.client, self.upstream):
            if sock is not None and sock.fileno() >= 0:
                self.poller.forget(sock.fileno(), closing)

    # -- ending -------------------------------------------------------------------
    def close(self, end: End = End.CLOSE) -> None:
        """Close both sockets. By the time the relay closes itself (``CLOSE``)
        every byte read was written; ``CUT`` drops what is still held, and
        ``RESET`` also sends RST."""
        if self.closed:
            return
        for pump in self.pumps or ():
            if pump.dead and not pump.eof and end is End.CLOSE:
                pump.drain()  # unread input would turn the close into a RST
        self.closed = True
        self._unwatch(closing=True)
        for pump in self.pumps or ():
            pump.release()
        for sock in (self.client, self.upstream):
            if sock is not None:
                if end is End.RESET:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                    except OSError:
                        pass
                sock.close()
        self.proxy.connections.discard(self)
        self.pumps = None  # they point back here: without this only the cyclic GC would free them
