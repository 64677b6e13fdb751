"""A named proxy: a listener, its live connections and its toxics.

All methods run on the server's event loop; chain changes are applied to
every live link synchronously, so an API reply means the change is in place.
A connection accepted while the proxy has no toxic takes the fast path
(:class:`chaos.proxy.relay.Relay`) and is promoted to the transport path
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
from chaos.proxy.link import ToxicSpec
from chaos.proxy.poller import Poller
from chaos.proxy.relay import Relay
from chaos.proxy.timer import PreciseTimer

log = logging.getLogger("chaos.proxy")


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True

STREAMS = ("upstream", "downstream")
_ACCEPTS_PER_WAKEUP = 32
RESOLVE_TTL = 5.0  # seconds an upstream's resolved address is reused
RESOLVE_TIMEOUT = 2.0


class Proxy:
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
        self.toxics: dict[str, list[ToxicSpec]] = {s: [] for s in STREAMS}
        self.connections: set[Connection | Relay] = set()
        self.counters: dict[str, list[int]] = {s: [0, 0] for s in STREAMS}
        self._sock: socket.socket | None = None
        self._family = socket.AF_INET
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ordinals = itertools.count()
        self._upstream_addr: tuple[str, int] | None = None
        self._resolved: tuple[str, float] | None = None  # (ip, monotonic time resolved)
        self._literal = False  # the upstream host is an IP address

    # -- lifecycle ---------------------------------------------------------
    def upstream_addr(self) -> tuple[str, int]:
        if self._upstream_addr is None:
            self._upstream_addr = addr.split(self.upstream)
            self._literal = _is_ip(self._upstream_addr[0])
        return self._upstream_addr

    def cached_target(self) -> tuple[str, int] | None:
        """The upstream's address if no lookup is needed now (see dial_target)."""
        host, port = self.upstream_addr()
        if self._literal:
            return host, port
        resolved = self._resolved
        if resolved is not None and time.monotonic() - resolved[1] < RESOLVE_TTL:
            return resolved[0], port
        return None

    async def dial_target(self) -> tuple[str, int]:
        """The upstream as an IP address and port, resolved once and reused.

        Resolving per dial (as Toxiproxy does) puts every new connection behind
        the resolver's small thread pool: when clients hammer an upstream that
        just died, its lookups fill that pool and dials to healthy upstreams of
        other proxies stall for seconds. A name is resolved again after
        RESOLVE_TTL; if that fails the last address is kept (a container being
        restarted keeps its pinned address), and with none the dial fails.
        """
        target = self.cached_target()
        if target is not None:
            return target
        host, port = self.upstream_addr()
        now = time.monotonic()
        if self._resolved is not None and now - self._resolved[1] < RESOLVE_TTL:
            return self._resolved[0], port
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            if self._resolved is not None:
                return self._resolved[0], port
            raise OSError(f"cannot resolve upstream {host}") from None
        self._resolved = (infos[0][4][0], now)
        return self._resolved[0], port

    async def start(self) -> None:
        """Listen; raises OSError with Go's wording when the address is taken."""
        if self._sock is not None:
            return
        host, port = addr.split(self.listen)
        self._upstream_addr = None
        self.upstream_addr()
        self._resolved = None
        loop = self._loop = asyncio.get_running_loop()
        if self.poller is None:
            self.poller = Poller(loop)
            self._own_poller = True
        try:
            sock = await self._bind(loop, host, port)
        except OSError as err:
            reason = (err.strerror or str(err)).lower()
            raise OSError(err.errno, f"listen tcp {self.listen}: bind: {reason}") from None
        self._sock = sock
        self._family = sock.family
        loop.add_reader(sock.fileno(), self._accept)
        sockname = sock.getsockname()
        self.listen = addr.join(sockname[0], sockname[1])
        self.enabled = True

    @staticmethod
    async def _bind(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
        # one socket on the first address (IPv4 first, as Go resolves "localhost");
        # an empty host means every interface, as in Toxiproxy
        infos = await loop.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        family, type_, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted sockets
        sock.setblocking(False)
        return sock

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
            if self.toxics["upstream"] or self.toxics["downstream"]:
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
        sock, self._sock = self._sock, None
        if sock is not None:
            self._loop.remove_reader(sock.fileno())  # type: ignore[union-attr]
            sock.close()
        for conn in list(self.connections):
            conn.close("cut")
        self.connections.clear()
        if self._own_poller and self.poller is not None:
            self.poller.close()
            self.poller = None
            self._own_poller = False

    # -- toxics ------------------------------------------------------------
    def find_toxic(self, name: str) -> ToxicSpec | None:
        for stream in STREAMS:
            for spec in self.toxics[stream]:
                if spec.name == name:
                    return spec
        return None

    def toxic_list(self) -> list[dict[str, Any]]:
        return [spec.as_json() for stream in STREAMS for spec in self.toxics[stream]]

    def _links(self, stream: str) -> list[Any]:
        return [c.links[stream] for c in list(self.connections) if not c.closed and c.links]

    def add_toxic(self, spec: ToxicSpec) -> None:
        for conn in [c for c in self.connections if isinstance(c, Relay)]:
            conn.promote()
        self.toxics[spec.stream].append(spec)
        for link in self._links(spec.stream):
            link.add(spec)

    def update_toxic(self, spec: ToxicSpec) -> None:
        spec.generation += 1
        for link in self._links(spec.stream):
            link.update(spec)

    def remove_toxic(self, spec: ToxicSpec) -> None:
        self.toxics[spec.stream].remove(spec)
        for link in self._links(spec.stream):
            link.remove(spec)

    def reset_toxics(self) -> None:
        for stream in STREAMS:
            for spec in list(self.toxics[stream]):
                self.remove_toxic(spec)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_list(),
        }
