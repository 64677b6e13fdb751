"""Readiness checks, the same for every backend (and for bench/stack.py's compose run)."""

from __future__ import annotations

import http.client
import socket
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from chaos.responses import stays_open
from chaos.stack.spec import HealthSpec


def _resp(*parts: str) -> bytes:
    """A command in Redis's protocol (RESP): safe for any password bytes."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _redis_ping(sock: socket.socket, password: str | None) -> str:
    reader = sock.makefile("rb")
    if password:
        sock.sendall(_resp("AUTH", password))
        if not reader.readline().startswith(b"+OK"):
            return "AUTH refused"
    sock.sendall(_resp("PING"))
    return "" if reader.readline().startswith(b"+PONG") else "no PONG"


TCP_SETTLE_S = 0.2


def check(health: HealthSpec, host: str, port: int, timeout: float = 1.0, password: str | None = None,
          bearer: str | None = None) -> bool:
    """One attempt: True when the instance answers as its health spec says.

    ``password``: the filled-in ``health.password`` (Redis AUTH before PING);
    ``bearer``: the filled-in ``health.bearer`` (HTTP ``Authorization: Bearer``).
    """
    return not answer(health, host, port, timeout, password, bearer)


def answer(health: HealthSpec, host: str, port: int, timeout: float = 1.0, password: str | None = None,
           bearer: str | None = None) -> str:
    """One attempt: "" when the instance answers as its health spec says, else what it answered
    (a bring-up that gives up says it: "connection refused" is another story than "HTTP 503")."""
    if health.kind == "none":
        return ""  # healthy once running: the caller's alive() says whether it still runs
    try:
        if health.kind == "http":
            # http.client, not urllib: a bring-up polls a dozen instances twenty times a second, and urllib's
            # handler chain made that polling cost more CPU than the instances it waited for.
            headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                conn.request("GET", health.path, headers=headers)
                status = conn.getresponse().status
                return "" if 200 <= status < 300 else f"HTTP {status}"
            finally:
                conn.close()
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if health.kind == "tcp":
                return "" if stays_open(sock, TCP_SETTLE_S) else "closed at once"
            return _redis_ping(sock, password)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as err:
        # whatever answers there is not (yet) a healthy instance
        return (str(getattr(err, "strerror", None) or err) or type(err).__name__).lower()


class NotHealthy(TimeoutError):
    """An instance that did not become healthy in time (``name``: which)."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def fill_secret(template: str | None, secrets: Mapping[str, str] | None) -> str | None:
    """``{secret}`` / ``{proxy_token}`` in a health spec, from the run's secrets (missing ones: empty)."""
    if not template:
        return None
    values = dict(secrets or {})
    return template.format_map({"secret": values.get("secret", ""), "proxy_token": values.get("proxy_token", "")})


ALIVE_EVERY = 0.5  # seconds between two "did it die?" questions about one instance while waiting for it


def wait_all(
    targets: Iterable[tuple[str, HealthSpec, Callable[[], tuple[str, int]]]],
    alive: Callable[[str], str | None] = lambda name: None,
    interval: float = 0.05,
    checkpoint: Callable[[], None] = lambda: None,
    secrets: Mapping[str, str] | None = None,
    wake: Callable[[float], set[str]] | None = None,
    timeout_scale: float = 1.0,
) -> dict[str, float]:
    """Poll until every target is healthy; returns seconds each took.

    ``alive(name)`` returns a reason when an instance died (so we stop
    waiting on it at once instead of running into its timeout).
    ``checkpoint()`` is called between rounds; it may raise to stop waiting
    (a Ctrl-C noted by the runner). ``secrets`` fill ``{secret}`` and
    ``{proxy_token}`` in a health spec's password and bearer token.
    ``wake(timeout)``, when given, waits up to ``timeout`` for instances
    that say they are ready (or exited) and returns their names: those are
    checked at once instead of at the next round. ``timeout_scale``
    stretches every health spec's ``timeout_s`` (a backend that is slow
    to start tasks, e.g. swarm's first task on a node).
    Raises NotHealthy (a TimeoutError) naming the instance that never became healthy and what it last answered.
    """
    pending = {name: (health, where) for name, health, where in targets}
    start = time.monotonic()
    took: dict[str, float] = {}
    asked: dict[str, float] = {}  # when alive() was last asked, per instance
    woken: set[str] = set()

    last: dict[str, str] = {}  # what each instance last answered

    def attempt(name: str) -> tuple[str, bool, str]:
        health, where = pending[name]
        # Whether it died is asked at most every ALIVE_EVERY (or at once when it said something): on docker
        # each answer is an engine call, and a dozen of them per round loaded the engine that starts the stack.
        if name in woken or time.monotonic() - asked.get(name, 0.0) >= ALIVE_EVERY:
            asked[name] = time.monotonic()
            dead = alive(name)
            if dead:
                return name, False, dead
        host, port = where()
        password, bearer = fill_secret(health.password, secrets), fill_secret(health.bearer, secrets)
        said = answer(health, host, port, timeout=min(1.0, health.timeout_s), password=password, bearer=bearer)
        last[name] = said
        return name, not said, ""

    # Checks run side by side: one slow instance must not delay noticing the others.
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(pending)))) as pool:
        due, full = list(pending), True
        next_round = 0.0
        while pending:
            checkpoint()
            for name, ok, dead in pool.map(attempt, due):
                if dead:
                    raise TimeoutError(f"{name} exited before it became healthy: {dead}")
                health, where = pending[name]
                if ok:
                    took[name] = time.monotonic() - start
                    del pending[name]
                elif time.monotonic() - start > health.timeout_s * timeout_scale:
                    host, port = where()
                    raise NotHealthy(f"{name} not healthy after {health.timeout_s * timeout_scale:g}s ({health.kind} "
                                     f"{host}:{port}; last answer: {last.get(name) or 'none'})", name)
            if not pending:
                break
            if full:
                next_round = time.monotonic() + interval
            left = max(0.0, next_round - time.monotonic())
            if wake is None:
                time.sleep(left)
                woken = set()
            else:
                woken = wake(left) & set(pending)
            # Every instance at each round's time; in between, at once, those that just said they are ready.
            full = time.monotonic() >= next_round
            due = list(pending) if full else sorted(woken)
    return took
