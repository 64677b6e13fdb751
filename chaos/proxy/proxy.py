"""A named proxy: a listener, its live connections (flows) and its toxics.

All methods run on the server's event loop; chain changes are applied to
every live flow synchronously, so an API reply means the change is in place.
A connection accepted while the proxy has no toxic takes the fast path
(:class:`chaos.proxy.relay.Relay`) and is promoted to the toxic path
(:class:`chaos.proxy.connection.Connection`) when a toxic is added.
"""

from __future__ import annotations

import _socket
import asyncio
import itertools
import logging
import socket
import time
from typing import Any

from chaos.proxy import addr
from chaos.proxy.connection import Connection
from chaos.proxy.flow import ChainChange, Flow
from chaos.proxy.poller import Poller
from chaos.proxy.relay import Relay
from chaos.proxy.timer import PreciseTimer
from chaos.proxy.toxics.base import DIRECTIONS, Direction, End, ToxicSpec

log = logging.getLogger("chaos.proxy")

_ACCEPTS_PER_WAKEUP = 32
RESOLVE_TTL = 5.0  # seconds an upstream's resolved address is reused
RESOLVE_TIMEOUT = 2.0


class ListenError(OSError):
    """The listener could not be opened; the message is Go's (Toxiproxy answers it with 500)."""


class Proxy:
    """One proxy (a :class:`~chaos.proxy.flow.ProxyView` for its flows)."""

    def __init__(self, name: str, listen: str, upstream: str, *, seed: int, timer: PreciseTimer,
                 poller: Poller | None = None) -> None:
        self.name = name
        self.listen = listen  # as given until started, then the real address
        self.upstream = upstream
        self.enabled = False
        self.seed = seed
        self.timer = timer
        self.poller = poller  # made on start() when not shared by the registry
        self._own_poller = False
        self.toxics: dict[Direction, list[ToxicSpec]] = {d: [] for d in DIRECTIONS}
        self.connections: set[Flow] = set()
        self.counters: dict[Direction, list[int]] = {d: [0, 0] for d in DIRECTIONS}
        self._sock: socket.socket | None = None
        self._family = socket.AF_INET
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ordinals = itertools.count()
        self._upstream_addr: tuple[str, int] | None = None
        self._resolved: tuple[str, float] | None = None  # (ip, monotonic time resolved)
        self._lookup: asyncio.Task[str | None] | None = None  # the one lookup of the upstream's name in flight
        self._lookup_started = 0.0  # monotonic time the lookup in flight began
        self._literal = False  # the upstream host is an IP address

    # -- the upstream ----------------------------------------------------------
    def upstream_addr(self) -> tuple[str, int]:
        """(host, port); OSError when the upstream is no address (Toxiproxy accepts
        any upstream text and fails each dial instead)."""
        if self._upstream_addr is None:
            try:
                self._upstream_addr = addr.split(self.upstream)
            except addr.AddressError as err:
                raise OSError(f"dial tcp {err}") from None
            self._literal = addr.is_ip(self._upstream_addr[0])
        return self._upstream_addr

    def cached_target(self) -> tuple[str, int] | None:
        """The upstream's address if no lookup must be awaited (see dial_target)."""
        try:
            host, port = self.upstream_addr()
        except OSError:
            return None
        if self._literal:
            return host, port
        resolved = self._resolved
        if resolved is None:
            return None
        if time.monotonic() - resolved[1] >= RESOLVE_TTL:
            self._refresh()  # looked up again in the background; this dial keeps the last address
        return resolved[0], port

    async def dial_target(self) -> tuple[str, int]:
        """The upstream as an IP address and port, resolved once and reused.

        Resolving per dial (as Toxiproxy does) puts every new connection behind
        the resolver's small thread pool: when clients hammer an upstream that
        just died, its lookups fill that pool and dials stall for seconds. So a
        name is looked up by one lookup at a time (every dial that needs it
        waits on that one), and once known its address is used at once: after
        RESOLVE_TTL a new lookup starts in the background, and dials keep the
        last address until it answers (a container being restarted keeps its
        pinned address, and its name does not resolve while it is stopped).
        Only a name never resolved makes a dial wait, for RESOLVE_TIMEOUT.
        """
        target = self.cached_target()
        if target is not None:
            return target
        host, port = self.upstream_addr()
        lookup = self._refresh()
        try:
            ip = await asyncio.wait_for(asyncio.shield(lookup), RESOLVE_TIMEOUT)
        except asyncio.TimeoutError:
            ip = None
        if ip is None:
            raise OSError(f"cannot resolve upstream {host}")
        return ip, port

    def _refresh(self) -> asyncio.Future[str | None]:
        """The lookup in flight, started if none is or if it has hung past RESOLVE_TIMEOUT.

        A lookup hanging in the resolver (a name server that never answers) would
        otherwise hold every later dial of a name never resolved until the
        resolver gives up; the hung one keeps its thread and is left to finish.
        """
        now = time.monotonic()
        if self._lookup is None or self._lookup.done() or now - self._lookup_started >= RESOLVE_TIMEOUT:
            self._lookup_started = now
            self._lookup = asyncio.get_running_loop().create_task(self._look_up())
        return self._lookup

    async def _look_up(self) -> str | None:
        # no timeout of its own: one lookup at a time holds at most one
        # resolver thread, however long the resolver takes to give up
        host, port = self.upstream_addr()
        started = time.monotonic()
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
        except OSError:
            return None
        address = str(infos[0][4][0])
        if self._resolved is None or self._resolved[1] <= started:  # a hung older lookup must not undo a newer one
            self._resolved = (address, started)
        return address

    # -- lifecycle ---------------------------------------------------------
    async def start(self) -> None:
        """Listen; raises ListenError worded as Go's ``net.Listen`` error."""
        if self._sock is not None:
            return
        self._upstream_addr = None
        self._resolved = None
        self._lookup = None
        self._lookup_started = 0.0
        loop = self._loop = asyncio.get_running_loop()
        sock = await listen_socket(loop, self.listen)
        if self.poller is None:
            self.poller = Poller(loop)
            self._own_poller = True
        self._sock = sock
        self._family = sock.family
        loop.add_reader(sock.fileno(), self._accept)
        sockname = sock.getsockname()
        self.listen = addr.join(sockname[0], sockname[1])
        self.enabled = True

    def _accept(self) -> None:
        # accepted here rather than by loop.create_server, so that a connection
        # of a proxy without toxics can skip asyncio transports (relay.py)
        listener, loop = self._sock, self._loop
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                # the C-level accept: socket.accept() adds ~5 µs of Python per connection
                fd, _ = listener._accept()  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # e.g. out of fds: this client is refused, the listener lives
                log.warning("%s: accept failed: %s", self.name, err)
                return
            # TCP_NODELAY comes from the listener (Linux copies it to accepted sockets)
            ordinal = next(self._ordinals)
            if self.toxics[Direction.UPSTREAM] or self.toxics[Direction.DOWNSTREAM]:
                sock = socket.socket(listener.family, socket.SOCK_STREAM, 0, fd)  # type: ignore[union-attr]
                sock.setblocking(False)
                Connection(self, ordinal).adopt(sock, None, {})
            else:
                raw = _socket.socket(self._family, socket.SOCK_STREAM, 0, fd)
                raw.setblocking(False)
                Relay(self, ordinal, raw, loop, self.poller).start()  # type: ignore[arg-type]

    async def stop(self) -> None:
        """Stop listening and cut every live connection both ways."""
        self.enabled = False
        if self._lookup is not None:
            self._lookup.cancel()
            self._lookup = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())  # type: ignore[union-attr]
            sock.close()
        for flow in list(self.connections):
            flow.close(End.CUT)
        self.connections.clear()
        if self._own_poller and self.poller is not None:
            self.poller.close()
            self.poller = None
            self._own_poller = False

    # -- toxics ------------------------------------------------------------
    def find_toxic(self, name: str) -> ToxicSpec | None:
        for direction in DIRECTIONS:
            for spec in self.toxics[direction]:
                if spec.name == name:
                    return spec
        return None

    def toxic_list(self) -> list[dict[str, Any]]:
        return [spec.as_json() for direction in DIRECTIONS for spec in self.toxics[direction]]

    def _tell(self, change: ChainChange, spec: ToxicSpec) -> None:
        for flow in list(self.connections):
            if not flow.closed:
                flow.toxic_changed(change, spec)

    def add_toxic(self, spec: ToxicSpec) -> None:
        self.toxics[spec.direction].append(spec)
        self._tell(ChainChange.ADDED, spec)

    def update_toxic(self, spec: ToxicSpec) -> None:
        spec.generation += 1
        self._tell(ChainChange.UPDATED, spec)

    def remove_toxic(self, spec: ToxicSpec) -> None:
        self.toxics[spec.direction].remove(spec)
        self._tell(ChainChange.REMOVED, spec)

    def reset_toxics(self) -> None:
        for direction in DIRECTIONS:
            for spec in list(self.toxics[direction]):
                self.remove_toxic(spec)

    def as_json(self) -> dict[str, Any]:
        # Toxiproxy 2.12 marshals its proxy struct's exported zerolog Logger too: "Logger": {}
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},
            "toxics": self.toxic_list(),
        }


async def listen_socket(loop: asyncio.AbstractEventLoop, listen: str) -> socket.socket:
    """A listening socket for ``listen`` as Go's ``net.Listen("tcp", listen)``
    makes it: no host means every interface, IPv6 and IPv4 at once ("[::]");
    a name listens on its first address, IPv4 first. Errors are Go's text."""
    try:
        host, port = addr.split(listen) if listen else ("", 0)
    except addr.AddressError as err:
        raise ListenError(f"listen tcp: {err}") from None
    if not host:
        candidates: list[tuple[socket.AddressFamily, tuple[Any, ...]]] = [
            (socket.AF_INET6, ("::", port)), (socket.AF_INET, ("0.0.0.0", port))]
    else:
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except OSError:
            raise ListenError(f"listen tcp: lookup {host}: no such host") from None
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        candidates = [(infos[0][0], infos[0][4][:2])]
    for i, (family, sockaddr) in enumerate(candidates):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            if i + 1 < len(candidates):
                continue  # no IPv6 here: every interface means every IPv4 one
            raise
        try:
            if family == socket.AF_INET6 and not host:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1024)
        except OSError as err:
            sock.close()
            if i + 1 < len(candidates) and err.errno in (97, 99):  # EAFNOSUPPORT, EADDRNOTAVAIL: no IPv6
                continue
            where = f":{port}" if not host else addr.join(sockaddr[0], port)
            reason = (err.strerror or str(err))
            raise ListenError(f"listen tcp {where}: bind: {reason[:1].lower()}{reason[1:]}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
        sock.setblocking(False)
        return sock
    raise ListenError(f"listen tcp {listen}: no address to listen on")  # pragma: no cover
