"""Upstream names are resolved once and reused, so a burst of dials never
queues behind the resolver (found on Docker: clients hammering a killed edge
stalled dials to the healthy edges for ~9 s; and clients hammering a killed
state store, whose name does not resolve while it is stopped, kept every dial
waiting on lookups for 4-10 s after it was back)."""

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


async def test_once_known_a_dial_never_waits_on_a_lookup(monkeypatch):
    """After the TTL one lookup runs in the background; dials keep the last address meanwhile."""
    loop = asyncio.get_running_loop()
    proxy = make("localhost:6379")
    known = await proxy.dial_target()
    calls = []
    release = asyncio.Event()

    async def hanging(*args, **kwargs):  # a name that no longer resolves: the resolver takes its time
        calls.append(args[0])
        await release.wait()
        raise OSError("name not known")

    monkeypatch.setattr(loop, "getaddrinfo", hanging)
    monkeypatch.setattr(proxy_module, "RESOLVE_TTL", 0.0)
    for _ in range(200):
        assert await asyncio.wait_for(proxy.dial_target(), 0.05) == known
        assert proxy.cached_target() == known
    await asyncio.sleep(0)
    assert calls == ["localhost"]  # one lookup in flight, not one per dial
    release.set()
    await asyncio.sleep(0.01)
    assert await proxy.dial_target() == known  # a failed lookup keeps the address
    await proxy.stop()


async def test_dials_of_a_name_never_resolved_share_one_lookup(monkeypatch):
    loop = asyncio.get_running_loop()
    calls = []
    real = loop.getaddrinfo

    async def slow(*args, **kwargs):
        calls.append(args[0])
        await asyncio.sleep(0.05)
        return await real(*args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", slow)
    proxy = make("localhost:6379")
    targets = await asyncio.gather(*(proxy.dial_target() for _ in range(100)))
    assert len(set(targets)) == 1 and targets[0][1] == 6379
    assert calls == ["localhost"]


async def test_a_name_that_never_resolves_fails_the_dial_within_the_timeout(monkeypatch):
    loop = asyncio.get_running_loop()

    async def hanging(*args, **kwargs):
        await asyncio.sleep(60)

    monkeypatch.setattr(loop, "getaddrinfo", hanging)
    monkeypatch.setattr(proxy_module, "RESOLVE_TIMEOUT", 0.05)
    proxy = make("nowhere.invalid:5")
    try:
        await proxy.dial_target()
    except OSError as err:
        assert "cannot resolve upstream nowhere.invalid" in str(err)
    else:
        raise AssertionError("the dial did not fail")
    await proxy.stop()


async def test_a_lookup_hung_past_the_timeout_does_not_hold_later_dials(monkeypatch):
    """The first lookup of a name hangs (a name server that never answers); a dial after
    RESOLVE_TIMEOUT starts a fresh lookup instead of waiting on the hung one."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo
    calls = []
    release = asyncio.Event()

    async def first_hangs(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 1:
            await release.wait()
            return [(0, 0, 0, "", ("127.0.0.9", args[1]))]  # answered late, with an older address
        return await real(*args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", first_hangs)
    monkeypatch.setattr(proxy_module, "RESOLVE_TIMEOUT", 0.05)
    proxy = make("localhost:6379")
    try:
        await proxy.dial_target()
    except OSError:
        pass
    else:
        raise AssertionError("the first dial did not give up on the hung lookup")
    fresh = await asyncio.wait_for(proxy.dial_target(), 1.0)
    assert len(calls) == 2 and fresh[0] != "127.0.0.9"
    release.set()  # the hung lookup answers now: it must not replace the newer address
    await asyncio.sleep(0.01)
    assert proxy.cached_target() == fresh
    await proxy.stop()
