"""Ctrl-C and SIGTERM during a run: noted by the handler, acted on by the runner's main thread.

The handler (chaos.signals) only records the signal. The runner calls
``SignalGuard.check()`` at its checkpoints (every wait, every step of the
bring-up) and unwinds from there like an abort. While it rolls back and
tears down (``deferred()``), further signals are only noted and answered
with "still rolling back": a second Ctrl-C must not leave a toxic or a
paused container behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from chaos.signals import INTERRUPTS, Interrupted, Interrupts

__all__ = ["Interrupted", "SignalGuard"]


class SignalGuard:
    """The process's signal record for the span of one run.

    If the command line installed the handler already (``roomquake run``),
    the guard leaves it installed on exit and keeps what it recorded, so
    that one Ctrl-C ends the whole command. Otherwise (a library caller,
    the pytest plugin) it installs the handler for the run and restores the
    previous one after.
    """

    def __init__(self, interrupts: Interrupts = INTERRUPTS) -> None:
        self.interrupts = interrupts
        self._installed_here = False

    @property
    def received(self) -> list[str]:
        return self.interrupts.received

    def __enter__(self) -> SignalGuard:
        self._installed_here = self.interrupts.install()
        if self._installed_here:
            self.interrupts.reset()
        return self

    def __exit__(self, *exc: object) -> None:
        self.interrupts.winding_down = False
        if self._installed_here:
            self.interrupts.uninstall()

    def check(self) -> None:
        """Checkpoint (main thread): raise ``Interrupted`` if a signal came in."""
        self.interrupts.check()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals are only noted inside; the run has already decided to stop."""
        self.interrupts.winding_down = True
        yield
