"""Ctrl-C and SIGTERM become one exception the runner handles like an abort.

While the runner rolls back and tears down, further signals are only noted:
a second Ctrl-C must not leave a toxic or a paused container behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType


class Interrupted(BaseException):
    """The run was interrupted by a signal (BaseException: library code must not swallow it)."""

    def __init__(self, signame: str) -> None:
        super().__init__(f"interrupted by {signame}")
        self.signame = signame


class SignalGuard:
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_deferred: Callable[[str], None] | None = None) -> None:
        self._deferred = False
        self._old: dict[int, object] = {}
        self.on_deferred = on_deferred
        self.received: list[str] = []

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        if self._deferred:
            if self.on_deferred:
                self.on_deferred(name)
            return
        self._deferred = True  # the first signal starts the wind-down; later ones must not cut it short
        raise Interrupted(name)

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old.clear()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals are only noted inside; the run has already decided to stop."""
        self._deferred = True
        yield
