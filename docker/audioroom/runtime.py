"""What every service's main() shares: event loop (uvloop when present), signals, logging."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
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


async def every(period: float, step: Callable[[], Awaitable[None]], log: logging.Logger, stop: asyncio.Event) -> None:
    """Call ``step`` on a fixed cadence (not period + step time), logging failures, until ``stop``."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while not stop.is_set():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - a failed step must not end the loop
            log.warning("%s failed: %s", getattr(step, "__name__", "step"), err or type(err).__name__)
        due += period
        delay = due - loop.time()
        if delay < 0:  # a slow step: start the next one now, don't try to catch up
            due = loop.time()
            delay = 0
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass
