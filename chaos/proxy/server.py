"""Run the proxy server: API, proxies from a config file, clean shutdown."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from chaos.errors import UsageError
from chaos.proxy import addr
from chaos.proxy.api import make_app
from chaos.proxy.registry import ApiError, Registry

log = logging.getLogger("chaos.proxy")


def load_config(path: Path) -> list[dict[str, Any]]:
    """A Toxiproxy ``-config`` file: a JSON array of proxies."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise UsageError(f"{path}: cannot read proxy config: {err.strerror}") from None
    except ValueError as err:
        raise UsageError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON array of proxies")
    return data


def new_seed() -> int:
    return secrets.randbits(32)


class ProxyServer:
    """The API and its proxies on the running loop; an async context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, *, seed: int | None = None) -> None:
        self.host = host
        self.port = port
        self.seed = new_seed() if seed is None else seed
        self.registry = Registry(self.seed)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{addr.join(self.host, self.port)}"

    async def start(self) -> None:
        self._runner = web.AppRunner(make_app(self.registry), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            raise UsageError(f"cannot listen on {addr.join(self.host, self.port)}: {err.strerror}") from None
        self.port = self._runner.addresses[0][1]

    async def populate(self, proxies: list[dict[str, Any]], source: str) -> None:
        try:
            _, err = await self.registry.populate(proxies)
        except ApiError as bad:
            raise UsageError(f"{source}: {bad.message}") from None
        if err is not None:
            raise UsageError(f"{source}: {err.message}")

    async def close(self) -> None:
        await self.registry.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ProxyServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve(
    host: str, port: int, *, config: Path | None = None, seed: int | None = None,
    ready: Callable[[ProxyServer], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then close every proxy and connection."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread / Windows
            pass
    async with ProxyServer(host, port, seed=seed) as server:
        if config is not None:
            await server.populate(load_config(config), str(config))
        # Everything imported and built so far lives as long as the server: keep
        # it out of the cyclic GC, whose full passes over it (~20 ms here) would
        # otherwise land in the middle of latency toxics as stalls.
        gc.collect()
        gc.freeze()
        if ready is not None:
            ready(server)
        await stop.wait()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.remove_signal_handler(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass


def run(host: str, port: int, *, config: Path | None = None, seed: int | None = None,
        ready: Callable[[ProxyServer], None] | None = None) -> None:
    """Blocking entry point; uses uvloop when installed."""
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency on Linux
        runner = asyncio.run
    try:
        runner(serve(host, port, config=config, seed=seed, ready=ready))
    except KeyboardInterrupt:  # pragma: no cover - signal arrived before the handler
        sys.exit(130)
