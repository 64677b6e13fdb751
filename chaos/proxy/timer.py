"""Sub-millisecond timers for toxics.

Event-loop timers (asyncio's and uvloop's) wake on whole milliseconds, so a
50 ms latency toxic would be up to ~1 ms late (or early) per chunk. On Linux
one ``timerfd`` armed to the earliest deadline wakes the loop within tens of
microseconds; elsewhere the loop's own timers are used.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import os
import time
from collections.abc import Callable

_CLOCK_MONOTONIC = 1  # time.monotonic() uses CLOCK_MONOTONIC on Linux
_TFD_NONBLOCK = 0o4000
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1
# a timerfd wake-up reaches Python ~60-100 µs after its deadline (kernel timer
# slack plus the loop's dispatch); arming that much early centres the error on 0
_EARLY = 60e-6


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create  # noqa: B018 - probe the symbol
        libc.timerfd_settime  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


def wake(fut: asyncio.Future[None]) -> None:
    """Resolve a waiter unless it is done (cancelled) already."""
    if not fut.done():
        fut.set_result(None)


class Handle:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class PreciseTimer:
    """Calls callbacks at ``time.monotonic()`` deadlines on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[tuple[float, int, Handle]] = []
        self._seq = itertools.count()
        self._armed: float | None = None
        self._fd = -1
        self._libc = _libc() if hasattr(loop, "add_reader") else None
        if self._libc is not None:
            fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            if fd >= 0:
                self._fd = fd
                loop.add_reader(fd, self._fire)
        self._fallback: asyncio.TimerHandle | None = None

    def call_at(self, when: float, callback: Callable[[], None]) -> Handle:
        handle = Handle(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), handle))
        if self._armed is None or when < self._armed:
            self._arm(when)
        return handle

    async def sleep_until(self, when: float) -> None:
        if when <= time.monotonic():
            return
        fut = self._loop.create_future()
        handle = self.call_at(when, lambda: wake(fut))
        try:
            await fut
        finally:
            handle.cancel()

    def _arm(self, when: float) -> None:
        self._armed = when
        if self._fd >= 0 and self._libc is not None:
            spec = _Itimerspec()
            when -= _EARLY
            sec = int(when)
            spec.it_value.tv_sec = sec
            spec.it_value.tv_nsec = max(1, int((when - sec) * 1e9))
            self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None)
        else:
            if self._fallback is not None:
                self._fallback.cancel()
            self._fallback = self._loop.call_later(max(0.0, when - time.monotonic()), self._fire)

    def _fire(self) -> None:
        if self._fd >= 0:
            try:
                os.read(self._fd, 8)
            except BlockingIOError:
                pass
        self._armed = None
        heap = self._heap
        now = time.monotonic() + _EARLY
        while heap and (heap[0][2].cancelled or heap[0][0] <= now):
            _, _, handle = heapq.heappop(heap)
            if not handle.cancelled:
                handle.cancelled = True
                handle.callback()
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._fallback is not None:
            self._fallback.cancel()
        self._heap.clear()
