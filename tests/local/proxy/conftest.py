"""Fixtures for the proxy's local tier: a real server, real upstreams, real sockets.

With TOXIPROXY_URL set, the conformance tests run against that server instead
(a real Toxiproxy); tests of roomquake-only behaviour are then skipped.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from chaos.proxy.client import ProxyClient

ROOT = Path(__file__).resolve().parents[3]
SEED = 7


class ServerProcess:
    """``python -m chaos.proxy`` in a child process."""

    def __init__(self, *args: str) -> None:
        # stderr to a file: a pipe nobody reads could fill up and stall the server
        self.log = tempfile.NamedTemporaryFile("w+", prefix="roomquake-proxy-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chaos.proxy", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if "API on " not in line:
            self.proc.kill()
            raise RuntimeError(f"proxy server did not start: {line!r} {self.stderr()!r}")
        self.url = line.split("API on ", 1)[1].split()[0]

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url = os.environ.get("TOXIPROXY_URL")
    if url:
        yield url.rstrip("/")
        return
    server = ServerProcess("--seed", str(SEED))
    yield server.url
    code = server.stop()
    errors = server.stderr()
    assert code == 0, errors
    assert "Traceback" not in errors, errors


@pytest.fixture(scope="session")
def is_ours(server_url: str) -> bool:
    return not os.environ.get("TOXIPROXY_URL")


@pytest.fixture
def ours_only(is_ours: bool) -> None:
    if not is_ours:
        pytest.skip("roomquake-only behaviour (TOXIPROXY_URL points at another server)")


@pytest.fixture(scope="session")
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(*args: str) -> ServerProcess:
        server = ServerProcess(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


_names = itertools.count()


@pytest.fixture
def client(server_url: str) -> Iterator[ProxyClient]:
    c = ProxyClient(server_url)
    before = set(c.proxies())
    yield c
    for name in set(c.proxies()) - before:
        c.delete(name)
    c.close()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return f"t{next(_names)}_{request.node.name[:40]}".replace("[", "_").replace("]", "_")


@pytest.fixture
def http(server_url: str) -> Callable[..., requests.Response]:
    session = requests.Session()

    def call(method: str, path: str, **kwargs: object) -> requests.Response:
        return session.request(method, server_url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    return call


# ------------------------------------------------------------------ upstreams


class Upstream:
    """A threaded TCP server on 127.0.0.1; ``handler(conn)`` per connection."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.handler = handler
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass


def echo_handler(conn: socket.socket) -> None:
    while True:
        data = conn.recv(65536)
        if not data:
            conn.shutdown(socket.SHUT_WR)
            return
        conn.sendall(data)


@pytest.fixture
def upstream() -> Iterator[Callable[[Callable[[socket.socket], None]], Upstream]]:
    made: list[Upstream] = []

    def make(handler: Callable[[socket.socket], None] = echo_handler) -> Upstream:
        up = Upstream(handler)
        made.append(up)
        return up

    yield make
    for up in made:
        up.close()


@pytest.fixture
def echo(upstream: Callable[..., Upstream]) -> Upstream:
    return upstream(echo_handler)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_all(s: socket.socket) -> bytes:
    buf = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return bytes(buf)
        buf += chunk


def fastest_echo(s: socket.socket, payload: bytes, tries: int = 5) -> float:
    """The quickest of `tries` echo round trips, in seconds.

    A latency toxic delays every try, while a loaded machine delays only some:
    the minimum tells a toxic still applied from a scheduling stall (a single
    round trip read 0.24 s for a 0 ms toxic at load 7)."""
    best = float("inf")
    for _ in range(tries):
        t0 = time.perf_counter()
        s.sendall(payload)
        got = recv_exactly(s, len(payload))
        assert got == payload, got
        best = min(best, time.perf_counter() - t0)
    return best


@pytest.fixture
def sockets() -> object:
    """connect / recv_exactly / recv_all helpers (tests run with importlib: no shared modules)."""

    class Helpers:
        pass

    h = Helpers()
    h.connect = connect  # type: ignore[attr-defined]
    h.recv_exactly = recv_exactly  # type: ignore[attr-defined]
    h.recv_all = recv_all  # type: ignore[attr-defined]
    h.fastest_echo = fastest_echo  # type: ignore[attr-defined]
    h.time = time  # type: ignore[attr-defined]
    return h
