"""Ctrl-C and SIGTERM as data: a handler that only notes the signal.

A handler that raises (as Python's default SIGINT handler does) fires
between any two bytecodes of the main thread: inside a library's lock,
half-way through a queue operation, between "resource created" and
"resource registered". One such exception hung a runner on a lock it had
left held. So roomquake's handler does no work: it appends the signal's
name to a list and, when the process is already winding down, writes one
fixed line to stderr with ``os.write`` (one system call, no Python lock).
The main thread looks at the list at its checkpoints (``check()``) and
unwinds from there, with ``Interrupted``, at a point of its own choosing.

This module imports nothing but the standard library, so the command line
can install the handler before anything else is loaded.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {int(s): s.name for s in SIGNALS}


class Interrupted(BaseException):
    """The run was interrupted by a signal (BaseException: library code must not swallow it)."""

    def __init__(self, signame: str) -> None:
        super().__init__(f"interrupted by {signame}")
        self.signame = signame


class Interrupts:
    """The signals this process received; one instance per process (``INTERRUPTS``)."""

    def __init__(self) -> None:
        self.received: list[str] = []  # appended by the handler only
        self.winding_down = False  # set by the main thread once it has decided to stop
        self._old: dict[int, Any] = {}

    # --- the handler: data only ---------------------------------------------------

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = _NAMES.get(signum, str(signum))
        self.received.append(name)  # list.append: one C call, atomic under the GIL, no lock
        if self.winding_down or len(self.received) == 2:
            os.write(2, f"roomquake: {name} received: still rolling back, please wait\n".encode())

    # --- the main thread -------------------------------------------------------------

    @property
    def installed(self) -> bool:
        return bool(self._old)

    @property
    def first(self) -> str | None:
        return self.received[0] if self.received else None

    def install(self) -> bool:
        """Take over SIGINT and SIGTERM (main thread only); False when already ours or not the main thread."""
        if self._old or threading.current_thread() is not threading.main_thread():
            return False
        for sig in SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)
        return True

    def uninstall(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def check(self) -> None:
        """A checkpoint: raise ``Interrupted`` in the main thread if a signal came and nobody is winding down yet."""
        if self.received and not self.winding_down and threading.current_thread() is threading.main_thread():
            raise Interrupted(self.received[0])

    def reset(self) -> None:
        self.received.clear()
        self.winding_down = False


INTERRUPTS = Interrupts()
