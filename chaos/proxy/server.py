"""Run the proxy server: API, proxies (and toxics) from a config file, clean shutdown."""

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

from chaos.errors import UsageError
from chaos.proxy import addr
from chaos.proxy.api import Api
from chaos.proxy.config import ConfigError, ProxyEntry, read_config
from chaos.proxy.http import HttpServer
from chaos.proxy.registry import ApiError, Registry

log = logging.getLogger("chaos.proxy")


def new_seed() -> int:
    return secrets.randbits(32)


class ProxyServer:
    """The API and its proxies on the running loop; an async context manager.

    ``token``: when given, every API request must carry ``Authorization:
    Bearer <token>`` (401 otherwise); none means exactly Toxiproxy's API.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, *, seed: int | None = None,
                 token: str | None = None) -> None:
        self.host = host
        self.port = port
        self.seed = new_seed() if seed is None else seed
        self.registry = Registry(self.seed)
        self.api = Api(self.registry, token=token)
        self._http: HttpServer | None = None

    @property
    def url(self) -> str:
        return f"http://{addr.join(self.host, self.port)}"

    async def start(self) -> None:
        http = HttpServer(self.api)
        try:
            await http.start(self.host, self.port)
        except OSError as err:
            raise UsageError(f"cannot listen on {addr.join(self.host, self.port)}: {err.strerror or err}") from None
        self._http = http
        self.port = http.port

    async def apply_config(self, entries: list[ProxyEntry]) -> None:
        """Create the file's proxies as /populate would, then add their toxics."""
        body = json.dumps([entry.body for entry in entries]).encode()
        try:
            proxies, err = await self.registry.populate(body)
        except ApiError as bad:
            raise ConfigError(f"{entries[0].where if entries else ''}: {bad.message}") from None
        if err is not None:
            failed = entries[len(proxies)]
            raise ConfigError(f"{failed.where}: proxy {failed.index} ({failed.name}): {err.message}")
        for entry, proxy in zip(entries, proxies):
            live = self.registry.proxies[proxy.name]
            for number, (toxic, where) in enumerate(entry.toxics, start=1):
                try:
                    self.registry.add_toxic_value(live, toxic)
                except ApiError as bad:
                    raise ConfigError(f"{where}: proxy {entry.index} ({entry.name}), toxic {number}: "
                                      f"{bad.message}") from None
        log.info("populated %d proxies from the config file", len(proxies))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.registry.close()

    async def __aenter__(self) -> ProxyServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve(
    host: str, port: int, *, config: Path | None = None, seed: int | None = None, token: str | None = None,
    ready: Callable[[ProxyServer], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then close every proxy and connection."""
    entries = read_config(config) if config is not None else []  # refused before anything listens
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not the main thread / Windows
            pass
    async with ProxyServer(host, port, seed=seed, token=token) as server:
        if entries:
            await server.apply_config(entries)
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


def run(host: str, port: int, *, config: Path | None = None, seed: int | None = None, token: str | None = None,
        ready: Callable[[ProxyServer], None] | None = None) -> None:
    """Blocking entry point; uses uvloop when installed."""
    try:
        import uvloop

        runner: Callable[..., Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a runtime dependency on Linux
        runner = asyncio.run
    try:
        runner(serve(host, port, config=config, seed=seed, token=token, ready=ready))
    except KeyboardInterrupt:  # pragma: no cover - signal arrived before the handler
        sys.exit(130)
