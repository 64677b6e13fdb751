"""Readiness checks, the same for every backend (and for bench/stack.py's compose run)."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from chaos.stack.spec import HealthSpec


def check(health: HealthSpec, host: str, port: int, timeout: float = 1.0) -> bool:
    """One attempt: True when the instance answers as its health spec says."""
    try:
        if health.kind == "http":
            with urllib.request.urlopen(f"http://{host}:{port}{health.path}", timeout=timeout) as reply:
                return 200 <= reply.status < 300
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if health.kind == "tcp":
                return True
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_all(
    targets: Iterable[tuple[str, HealthSpec, Callable[[], tuple[str, int]]]],
    alive: Callable[[str], str | None] = lambda name: None,
    interval: float = 0.05,
) -> dict[str, float]:
    """Poll until every target is healthy; returns seconds each took.

    ``alive(name)`` returns a reason when an instance died (so we stop
    waiting on it at once instead of running into its timeout).
    Raises TimeoutError naming the instances that never became healthy.
    """
    pending = {name: (health, where) for name, health, where in targets}
    start = time.monotonic()
    took: dict[str, float] = {}

    def attempt(name: str) -> tuple[str, bool, str]:
        health, where = pending[name]
        dead = alive(name)
        if dead:
            return name, False, dead
        host, port = where()
        return name, check(health, host, port, timeout=min(1.0, health.timeout_s)), ""

    # Checks run side by side: one slow instance must not delay noticing the others.
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(pending)))) as pool:
        while pending:
            for name, ok, dead in pool.map(attempt, list(pending)):
                if dead:
                    raise TimeoutError(f"{name} exited before it became healthy: {dead}")
                health, where = pending[name]
                if ok:
                    took[name] = time.monotonic() - start
                    del pending[name]
                elif time.monotonic() - start > health.timeout_s:
                    host, port = where()
                    raise TimeoutError(f"{name} not healthy after {health.timeout_s:g}s ({health.kind} {host}:{port})")
            if pending:
                time.sleep(interval)
    return took
