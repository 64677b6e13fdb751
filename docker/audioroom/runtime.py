"""What every service's main() shares: event loop (uvloop when present), signals, logging."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import time
from typing import Awaitable, Callable

from .config import Settings


def setup_logging(settings: Settings) -> logging.Logger:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {settings.instance} %(levelname)s %(name)s: %(message)s",
    )
    # Health probes that only open a TCP connection would otherwise log a
    # handshake error each; the edge's own warnings still show.
    logging.getLogger("websockets").setLevel(logging.ERROR)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return logging.getLogger(f"audioroom.{settings.service}")


def raise_open_files(log: logging.Logger) -> int:
    """Raise this process's open-file limit to its hard limit: a crowd or an edge holds one socket per
    listener, and the usual soft limit of 1,024 would cap it there. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and soft != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as err:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, err)
    return soft


def notify_ready() -> None:
    """Say "ready" on the pipe a launcher may hand over in RQ_READY_FD (optional: without it, nothing happens).

    roomquake's fork server passes it on, so the instance is checked at once
    instead of at the next poll.
    """
    fd = os.environ.get("RQ_READY_FD", "")
    if fd.isdigit():
        try:
            os.write(int(fd), b"ready\n")
        except OSError:
            pass


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` until SIGTERM/SIGINT sets ``stop``; uvloop if installed."""

    async def wrapper() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a declared dependency on Linux
        asyncio.run(wrapper())
    else:
        uvloop.run(wrapper())


class Outage:
    """Logs a run of failures as two lines, when it starts and when it ends, not one line per try.

    One instance may be shared by several loops of a process that depend on the
    same thing (a supervisor's lease and check loops both need the state store).
    """

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.failures = 0
        self.since = 0.0

    def failed(self, step: str, err: BaseException) -> None:
        if not self.failures:
            self.since = time.monotonic()
            self.log.warning("%s: %s failed: %s (not logged again until it works)", self.what, step,
                             str(err) or type(err).__name__)
        self.failures += 1

    def ok(self) -> None:
        if self.failures:
            self.log.warning("%s: works again after %d failed tries over %.1fs", self.what, self.failures,
                             time.monotonic() - self.since)
            self.failures = 0


async def every(
    period: float, step: Callable[[], Awaitable[None]], log: logging.Logger, stop: asyncio.Event,
    outage: Outage | None = None,
) -> None:
    """Call ``step`` on a fixed cadence (not period + step time) until ``stop``; a run of failures is logged
    once when it starts and once when it ends (``outage``, shared between loops if given)."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    name = getattr(step, "__name__", "step")
    outage = outage or Outage(log, name)
    while not stop.is_set():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a failed step must not end the loop
            outage.failed(name, err)
        else:
            outage.ok()
        due += period
        delay = due - loop.time()
        if delay < 0:  # a slow step: start the next one now, don't try to catch up
            due = loop.time()
            delay = 0
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass
