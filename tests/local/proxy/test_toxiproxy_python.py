"""The real toxiproxy-python client (not written by us) against the server.

Its host and port are class attributes; the fixture points them at the
server under test and restores them afterwards.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists


@pytest.fixture
def tp(server_url, client):
    saved = APIConsumer.host, APIConsumer.port
    parts = urlsplit(server_url)
    server = Toxiproxy()
    server.update_api_consumer(parts.hostname, parts.port)
    yield server
    APIConsumer.host, APIConsumer.port = saved


def test_create_list_and_destroy(tp, name, echo, sockets):
    proxy = tp.create(upstream=echo.address, name=name, listen="127.0.0.1:0")
    assert proxy.name == name and proxy.enabled is True
    assert name in tp.proxies()
    port = int(proxy.listen.rsplit(":", 1)[1])
    with sockets.connect(port) as s:
        s.sendall(b"hi")
        assert sockets.recv_exactly(s, 2) == b"hi"
    with pytest.raises(ProxyExists):
        tp.create(upstream=echo.address, name=name, listen="127.0.0.1:0")
    assert tp.destroy(proxy)
    assert tp.get_proxy(name) is None


def test_toxics_through_the_client(tp, name, echo, sockets):
    proxy = tp.create(upstream=echo.address, name=name, listen="127.0.0.1:0")
    proxy.add_toxic(type="latency", attributes={"latency": 80})
    toxics = proxy.toxics()
    assert list(toxics) == ["latency_downstream"]
    assert toxics["latency_downstream"].attributes["latency"] == 80
    port = int(proxy.listen.rsplit(":", 1)[1])
    with sockets.connect(port) as s:
        t0 = time.perf_counter()
        s.sendall(b"x")
        assert sockets.recv_exactly(s, 1) == b"x"
        assert time.perf_counter() - t0 >= 0.078
    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_down_context_manager(tp, name, echo, sockets):
    proxy = tp.create(upstream=echo.address, name=name, listen="127.0.0.1:0")
    port = int(proxy.listen.rsplit(":", 1)[1])
    with proxy.down():
        assert tp.get_proxy(name).enabled is False
        with pytest.raises(ConnectionRefusedError):
            sockets.connect(port)
    assert tp.get_proxy(name).enabled is True
    with sockets.connect(port) as s:
        s.sendall(b"up")
        assert sockets.recv_exactly(s, 2) == b"up"


def test_reset_version_and_client_side_populate(tp, name, echo):
    assert tp.version()
    created = tp.populate([{"name": name, "upstream": echo.address, "listen": "127.0.0.1:0"}])
    assert [p.name for p in created] == [name]
    proxy = tp.get_proxy(name)
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert tp.reset()
    again = tp.get_proxy(name)
    assert again.enabled is True and again.toxics() == {}
