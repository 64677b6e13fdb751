"""The client's one table from (status, Toxiproxy's error text) to exceptions."""

from __future__ import annotations

import pytest

from chaos.errors import RoomquakeError
from chaos.proxy.client import (
    ProxyClient,
    ProxyClientError,
    ProxyExistsError,
    ProxyNotFound,
    ProxyRequestInvalid,
    ProxyServerError,
    ProxyUnauthorized,
    ToxicExistsError,
    ToxicNotFound,
    error_class,
)


@pytest.mark.parametrize(("status", "text", "expected"), [
    (404, "proxy not found", ProxyNotFound), (404, "toxic not found", ToxicNotFound),
    (409, "proxy already exists", ProxyExistsError), (409, "toxic already exists", ToxicExistsError),
    (400, "invalid toxic type", ProxyRequestInvalid), (401, "missing or wrong API token", ProxyUnauthorized),
    (500, "listen tcp 127.0.0.1:1: bind: address already in use", ProxyServerError), (503, "", ProxyServerError),
    (405, "", ProxyClientError),
])
def test_every_status_maps_to_one_exception(status, text, expected):
    assert error_class(status, text) is expected


def test_a_client_is_bound_to_its_own_server_and_token():
    a = ProxyClient("127.0.0.1:1", token="t")
    b = ProxyClient("http://[::1]:2")
    try:
        assert a.url == "http://127.0.0.1:1" and b.url == "http://[::1]:2"
        assert a._session.headers["Authorization"] == "Bearer t"
        assert "Authorization" not in b._session.headers
    finally:
        a.close()
        b.close()
    with pytest.raises(RoomquakeError, match="needs a host and a port"):
        ProxyClient("http://nohost")
