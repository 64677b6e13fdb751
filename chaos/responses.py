"""Requests the toolkit makes itself, timed, and remembered per running stack for windowed probes.

An ``http`` probe with ``window: 10s`` answers from the requests its own
reads made in the last 10 s (each read is one request): the q-quantile of
their response times, or the share that answered OK. A request that got no
answer counts with the time it waited (a hang shows as slow, not as
missing), as ``crowd_join_attempt_seconds`` counts timeouts.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from chaos.perstack import PerStack

MAX_KEEP_S = 600.0


@dataclass(frozen=True)
class Response:
    t: float  # monotonic time the request ended
    seconds: float  # from sending to the answer's status line (or to giving up)
    status: int | None  # None: no answer (refused, reset, timed out)


def request(host: str, port: int, path: str, method: str = "GET", timeout: float = 5.0) -> Response:
    """One HTTP request; its status and how long until the status line came (or until it failed)."""
    began = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Connection": "close", "User-Agent": "roomquake-probe"})
        reply = conn.getresponse()
        took = time.monotonic() - began
        reply.read(1 << 20)  # drain a little so the server is not reset mid-write
        return Response(time.monotonic(), took, reply.status)
    except (OSError, http.client.HTTPException):
        end = time.monotonic()
        return Response(end, end - began, None)
    finally:
        conn.close()


def stays_open(sock: socket.socket, settle: float = 0.2) -> bool:
    """A TCP server really listens on this connected socket: it is not closed at once.

    A port Docker publishes accepts even while nothing listens in the
    container (its proxy accepts, then closes): only a connection that stays
    open for ``settle`` seconds (or that the server speaks on) counts.
    """
    sock.settimeout(settle)
    try:
        return sock.recv(1) != b""
    except TimeoutError:
        return True
    except OSError:
        return False


def tcp_accepts(host: str, port: int, timeout: float = 2.0, settle: float = 0.2) -> bool:
    """A TCP server listens there: the connection is accepted and stays open (``stays_open``)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            return stays_open(sock, settle)
    except OSError:
        return False


class ResponseHistory:
    """Recent responses per probe key, pruned to the longest window asked for."""

    def __init__(self) -> None:
        self._kept: dict[str, deque[Response]] = {}
        self._keep_s = 2.0
        self._lock = threading.Lock()

    def add(self, key: str, response: Response, window_s: float) -> list[Response]:
        """Remember ``response``; the responses of the last ``window_s`` seconds, this one included."""
        with self._lock:
            self._keep_s = min(MAX_KEEP_S, max(self._keep_s, window_s))
            kept = self._kept.setdefault(key, deque())
            kept.append(response)
            while kept and kept[0].t < response.t - self._keep_s:
                kept.popleft()
            return [r for r in kept if r.t >= response.t - window_s]


_HISTORIES: PerStack[ResponseHistory] = PerStack(ResponseHistory)


def history_for(stack: Any) -> ResponseHistory:
    """The response history of this running stack (created on first use, gone with the stack)."""
    return _HISTORIES.of(stack)
