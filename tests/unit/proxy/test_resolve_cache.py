"""Upstream names are resolved once and reused, so a burst of dials never
queues behind the resolver (found on Docker: clients hammering a killed edge
stalled dials to the healthy edges for ~9 s)."""

import asyncio

from chaos.proxy import proxy as proxy_module
from chaos.proxy.proxy import Proxy
from chaos.proxy.timer import PreciseTimer


def make(upstream: str) -> Proxy:
    return Proxy("p", "127.0.0.1:0", upstream, seed=1, timer=PreciseTimer(asyncio.get_running_loop()))


async def test_a_name_is_resolved_once_and_reused(monkeypatch):
    loop = asyncio.get_running_loop()
    calls = []
    real = loop.getaddrinfo

    async def counting(*args, **kwargs):
        calls.append(args[0])
        return await real(*args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    proxy = make("localhost:6379")
    first = await proxy.dial_target()
    for _ in range(50):
        assert await proxy.dial_target() == first
    assert calls == ["localhost"]
    assert first[1] == 6379


async def test_the_last_address_is_kept_when_a_lookup_fails(monkeypatch):
    loop = asyncio.get_running_loop()
    proxy = make("localhost:80")
    known = await proxy.dial_target()

    async def failing(*args, **kwargs):
        raise OSError("name not known")

    monkeypatch.setattr(loop, "getaddrinfo", failing)
    monkeypatch.setattr(proxy_module, "RESOLVE_TTL", 0.0)  # force a new lookup
    assert await proxy.dial_target() == known


async def test_an_ip_upstream_never_touches_the_resolver(monkeypatch):
    loop = asyncio.get_running_loop()

    async def failing(*args, **kwargs):
        raise AssertionError("resolver used for an IP address")

    monkeypatch.setattr(loop, "getaddrinfo", failing)
    assert await make("127.0.0.1:5").dial_target() == ("127.0.0.1", 5)
    assert await make("[::1]:5").dial_target() == ("::1", 5)
