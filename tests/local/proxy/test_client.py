"""chaos.proxy.client.ProxyClient: several servers at once, typed errors, bounded retries."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from chaos.proxy.client import (
    ProxyClient,
    ProxyExistsError,
    ProxyNotFound,
    ProxyRequestInvalid,
    ProxyServerError,
    ProxyServerUnreachable,
    ToxicExistsError,
    ToxicNotFound,
)


def test_lifecycle_and_update(client, name, echo, sockets):
    info = client.create(name, "127.0.0.1:0", echo.address)
    assert info.port > 0 and info.enabled
    toxic = client.add_toxic(name, "latency", stream="upstream", attributes={"latency": 5})
    assert toxic == "latency_upstream"
    updated = client.update_toxic(name, toxic, attributes={"jitter": 2}, toxicity=0.5)
    assert updated.attributes == {"latency": 5, "jitter": 2} and updated.toxicity == 0.5
    assert client.proxies()[name].toxics[0].name == toxic
    client.set_enabled(name, False)
    assert not client.get(name).enabled
    client.reset()
    assert client.get(name).enabled and client.toxics(name) == {}
    populated = client.populate([{"name": name, "listen": info.listen, "upstream": echo.address}])
    assert populated[0].listen == info.listen
    client.delete(name)
    assert name not in client.proxies()


def test_typed_errors_name_proxy_toxic_and_server(client, name, echo):
    client.create(name, "127.0.0.1:0", echo.address)
    with pytest.raises(ProxyExistsError, match=name):
        client.create(name, "127.0.0.1:0", echo.address)
    with pytest.raises(ProxyNotFound) as err:
        client.add_toxic(name + "-missing", "latency")
    assert client.url in str(err.value) and err.value.proxy == name + "-missing"
    client.add_toxic(name, "latency", name="lat")
    with pytest.raises(ToxicExistsError):
        client.add_toxic(name, "latency", name="lat")
    with pytest.raises(ToxicNotFound) as err:
        client.remove_toxic(name, "nope")
    assert err.value.toxic == "nope" and err.value.proxy == name
    with pytest.raises(ProxyRequestInvalid, match="invalid toxic type"):
        client.add_toxic(name, "earthquake")
    busy = client.get(name).listen
    with pytest.raises(ProxyServerError, match="in use"):
        client.create(name + "b", busy, echo.address)


def test_two_servers_at_once_do_not_mix(start_server, echo):
    a, b = start_server(), start_server()
    with ProxyClient(a.url) as ca, ProxyClient(b.url) as cb:
        errors: list[BaseException] = []

        def work(c: ProxyClient, prefix: str) -> None:
            try:
                for i in range(15):
                    c.create(f"{prefix}{i}", "127.0.0.1:0", echo.address)
                    c.add_toxic(f"{prefix}{i}", "latency")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(ca, "a")), threading.Thread(target=work, args=(cb, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(n.startswith("a") for n in ca.proxies()) and len(ca.proxies()) == 15
        assert all(n.startswith("b") for n in cb.proxies()) and len(cb.proxies()) == 15


def test_unreachable_server_fails_fast_and_bounded():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    c = ProxyClient(f"http://127.0.0.1:{port}", timeout=0.5, attempts=3, retry_for=2)
    t0 = time.monotonic()
    with pytest.raises(ProxyServerUnreachable) as err:
        c.add_toxic("edge", "latency")
    assert time.monotonic() - t0 < 5
    assert f"127.0.0.1:{port}" in str(err.value) and "edge" in str(err.value)
