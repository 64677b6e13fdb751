"""/health and /metrics for the aiohttp-based services (control, supervisor, host, crowd)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from .config import Settings
from .runtime import notify_ready

HealthCheck = Callable[[], Awaitable[tuple[bool, dict]]]


async def metrics_handler(_: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest(REGISTRY))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


def health_handler(check: HealthCheck) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(_: web.Request) -> web.Response:
        ok, detail = await check()
        return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)

    return handler


def base_app(check: HealthCheck) -> web.Application:
    app = web.Application()
    app.router.add_get("/health", health_handler(check))
    app.router.add_get("/metrics", metrics_handler)
    return app


@asynccontextmanager
async def serving(app: web.Application, settings: Settings) -> AsyncIterator[web.AppRunner]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.bind, settings.port, backlog=4096, reuse_address=True)
    await site.start()
    notify_ready()
    try:
        yield runner
    finally:
        await runner.cleanup()


def error(status: int, reason: str) -> web.Response:
    """A JSON error body ``{"reason": ...}``: what clients show and the crowd counts."""
    return web.json_response({"reason": reason}, status=status)
