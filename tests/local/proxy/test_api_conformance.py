"""Toxiproxy 2.12 API shapes and status codes over raw HTTP.

Runs against our server, or against TOXIPROXY_URL when set.
"""

from __future__ import annotations

import socket

import pytest


def make(http, name, upstream="127.0.0.1:9", listen="127.0.0.1:0", **extra):
    resp = http("POST", "/proxies", json={"name": name, "upstream": upstream, "listen": listen, **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()


def error_of(resp):
    body = resp.json()
    assert body["status"] == resp.status_code
    assert body["error"]
    return body["error"]


def test_version(http):
    resp = http("GET", "/version")
    assert resp.status_code == 200
    assert resp.json()["version"].startswith("2.")
    assert "X-Toxiproxy-Request-Id" in resp.headers


def test_create_reports_real_listen_and_shape(http, client, name):
    body = make(http, name)
    assert list(body) == ["name", "listen", "upstream", "enabled", "Logger", "toxics"]  # 2.12 marshals Logger
    host, port = body["listen"].rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert body["enabled"] is True and body["toxics"] == []
    index = http("GET", "/proxies").json()
    assert isinstance(index, dict) and index[name]["listen"] == body["listen"]
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5):
        pass


def test_create_errors(http, client, name):
    make(http, name)
    assert http("POST", "/proxies", json={"name": name, "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"}).status_code == 409
    resp = http("POST", "/proxies", json={"upstream": "127.0.0.1:9"})
    assert resp.status_code == 400 and "name" in error_of(resp)
    resp = http("POST", "/proxies", json={"name": name + "x"})
    assert resp.status_code == 400 and "upstream" in error_of(resp)
    resp = http("POST", "/proxies", data=b"{not json")
    assert resp.status_code == 400 and error_of(resp).startswith("bad request body")


def test_listen_address_in_use_is_500(http, client, name):
    first = make(http, name)
    resp = http("POST", "/proxies", json={"name": name + "b", "upstream": "127.0.0.1:9", "listen": first["listen"]})
    assert resp.status_code == 500
    assert "address already in use" in error_of(resp)
    assert http("GET", "/version").status_code == 200


def test_show_update_delete(http, client, name):
    made = make(http, name)
    assert http("GET", f"/proxies/{name}").json()["listen"] == made["listen"]
    resp = http("PATCH", f"/proxies/{name}", json={"enabled": False})
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    port = int(made["listen"].rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    resp = http("POST", f"/proxies/{name}", json={"enabled": True})  # deprecated POST still updates
    assert resp.status_code == 200 and resp.json()["enabled"] is True
    assert resp.json()["listen"] == made["listen"]  # re-enabled on the same address
    resp = http("PATCH", f"/proxies/{name}", json={"upstream": "127.0.0.1:10"})
    assert resp.json()["upstream"] == "127.0.0.1:10"
    assert http("DELETE", f"/proxies/{name}").status_code == 204
    resp = http("GET", f"/proxies/{name}")
    assert resp.status_code == 404 and error_of(resp) == "proxy not found"
    assert http("DELETE", f"/proxies/{name}").status_code == 404
    assert http("PATCH", f"/proxies/{name}", json={}).status_code == 404


def test_toxic_create_defaults_and_codes(http, client, name):
    make(http, name)
    resp = http("POST", f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert resp.status_code == 200
    toxic = resp.json()
    assert toxic["name"] == "latency_downstream" and toxic["stream"] == "downstream"
    assert toxic["toxicity"] == 1 and toxic["attributes"]["latency"] == 10
    assert toxic["attributes"]["jitter"] == 0
    again = http("POST", f"/proxies/{name}/toxics", json={"type": "latency", "attributes": {"latency": 10}})
    assert again.status_code == 409 and error_of(again) == "toxic already exists"
    bad_type = http("POST", f"/proxies/{name}/toxics", json={"type": "nope"})
    assert bad_type.status_code == 400 and error_of(bad_type) == "invalid toxic type"
    bad_stream = http("POST", f"/proxies/{name}/toxics", json={"type": "latency", "stream": "sideways"})
    assert bad_stream.status_code == 400 and "stream" in error_of(bad_stream)
    bad_json = http("POST", f"/proxies/{name}/toxics", data=b"[")
    assert bad_json.status_code == 400
    assert http("POST", "/proxies/nope/toxics", json={"type": "latency"}).status_code == 404


def test_toxic_show_update_merge_delete(http, client, name):
    make(http, name)
    http("POST", f"/proxies/{name}/toxics", json={"name": "lat", "type": "latency", "stream": "upstream",
                                                   "toxicity": 0.5, "attributes": {"latency": 100, "jitter": 5}})
    assert http("GET", f"/proxies/{name}/toxics/lat").json()["attributes"] == {"latency": 100, "jitter": 5}
    resp = http("PATCH", f"/proxies/{name}/toxics/lat", json={"attributes": {"latency": 200}})
    assert resp.status_code == 200
    assert resp.json()["attributes"] == {"latency": 200, "jitter": 5}  # merged
    assert resp.json()["toxicity"] == 0.5 and resp.json()["stream"] == "upstream"
    resp = http("POST", f"/proxies/{name}/toxics/lat", json={"toxicity": 1.0})
    assert resp.json()["toxicity"] == 1 and resp.json()["attributes"]["latency"] == 200
    listed = http("GET", f"/proxies/{name}/toxics").json()
    assert [t["name"] for t in listed] == ["lat"]
    assert http("GET", f"/proxies/{name}").json()["toxics"][0]["name"] == "lat"
    assert http("DELETE", f"/proxies/{name}/toxics/lat").status_code == 204
    missing = http("GET", f"/proxies/{name}/toxics/lat")
    assert missing.status_code == 404 and error_of(missing) == "toxic not found"
    assert http("DELETE", f"/proxies/{name}/toxics/lat").status_code == 404


def test_toxics_listed_upstream_first_in_creation_order(http, client, name):
    make(http, name)
    for toxic, stream in (("d1", "downstream"), ("u1", "upstream"), ("d2", "downstream"), ("u2", "upstream")):
        http("POST", f"/proxies/{name}/toxics", json={"name": toxic, "type": "latency", "stream": stream})
    assert [t["name"] for t in http("GET", f"/proxies/{name}/toxics").json()] == ["u1", "u2", "d1", "d2"]


def test_reset_reenables_and_removes_toxics(http, client, name):
    made = make(http, name)
    http("POST", f"/proxies/{name}/toxics", json={"type": "timeout", "attributes": {"timeout": 0}})
    http("PATCH", f"/proxies/{name}", json={"enabled": False})
    assert http("POST", "/reset").status_code == 204
    after = http("GET", f"/proxies/{name}").json()
    assert after["enabled"] is True and after["toxics"] == []
    assert after["listen"] == made["listen"]


def test_populate_creates_keeps_and_replaces(http, client, name):
    a, b = name + "a", name + "b"
    resp = http("POST", "/populate", json=[{"name": a, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
                                          {"name": b, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"}])
    assert resp.status_code == 201
    created = {p["name"]: p for p in resp.json()["proxies"]}
    assert set(created) == {a, b}
    http("POST", f"/proxies/{a}/toxics", json={"name": "keep", "type": "latency"})
    # a unchanged (same listen as reported) keeps its toxic; b gets a new upstream and is replaced
    resp = http("POST", "/populate", json=[{"name": a, "listen": created[a]["listen"], "upstream": "127.0.0.1:9"},
                                          {"name": b, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:10"}])
    assert resp.status_code == 201
    assert [t["name"] for t in http("GET", f"/proxies/{a}").json()["toxics"]] == ["keep"]
    assert http("GET", f"/proxies/{b}").json()["upstream"] == "127.0.0.1:10"


def test_populate_validates_everything_first(http, client, name):
    resp = http("POST", "/populate", json=[{"name": name, "listen": "127.0.0.1:0", "upstream": "127.0.0.1:9"},
                                          {"name": name + "x", "listen": "127.0.0.1:0"}])
    assert resp.status_code == 400
    assert "upstream" in resp.json()["error"]
    assert http("GET", f"/proxies/{name}").status_code == 404
    assert http("POST", "/populate", data=b"{}").status_code == 400


def test_metrics_count_bytes_per_direction(http, client, name, echo, sockets, ours_only):
    made = make(http, name, upstream=echo.address)
    with sockets.connect(int(made["listen"].rsplit(":", 1)[1])) as s:
        s.sendall(b"x" * 1000)
        assert sockets.recv_exactly(s, 1000) == b"x" * 1000
    text = http("GET", "/metrics").text
    lines = [line for line in text.splitlines() if f'proxy="{name}"' in line and "bytes_total" in line]
    values = {(line.split("{")[0], 'direction="upstream"' in line): float(line.rsplit(" ", 1)[1]) for line in lines}
    assert values[("toxiproxy_proxy_received_bytes_total", True)] == 1000
    assert values[("toxiproxy_proxy_sent_bytes_total", False)] == 1000


def test_browsers_are_refused(http):
    resp = http("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert resp.status_code == 403


def test_attributes_are_decoded_as_go_does(http, client, name):
    """Toxiproxy decodes attributes into Go ints: any integer goes (negative too),
    anything else is 400 with Go's words."""
    make(http, name)
    for i, attributes in enumerate(({"latency": -1}, {"latency": 0}, {"latency": 10**12})):
        resp = http("POST", f"/proxies/{name}/toxics", json={"name": f"ok{i}", "type": "latency",
                                                           "attributes": attributes})
        assert resp.status_code == 200, attributes
    for attributes, word in (({"latency": "fast"}, "string"), ({"latency": 1.5}, "number 1.5"),
                             ({"latency": True}, "bool")):
        resp = http("POST", f"/proxies/{name}/toxics", json={"type": "latency", "attributes": attributes})
        assert resp.status_code == 400, attributes
        assert error_of(resp) == (f"bad request body: json: cannot unmarshal {word} into Go struct field "
                                  "LatencyToxic.attributes.latency of type int64")
    for toxicity in (2, -1, 0):  # accepted: 2 always applies, 0 and below never
        resp = http("POST", f"/proxies/{name}/toxics", json={"name": f"t{toxicity}", "type": "noop",
                                                           "toxicity": toxicity})
        assert resp.status_code == 200 and resp.json()["toxicity"] == toxicity
    resp = http("POST", f"/proxies/{name}/toxics", json={"name": "sl", "type": "slicer",
                                                       "attributes": {"average_size": 1000, "size_variation": 1000}})
    assert resp.status_code == 200


def test_chaostoolkit_toxiproxy_calls(http, client, name, echo):
    """The exact requests chaostoolkit-toxiproxy 0.3 makes (it checks only response.ok and fields)."""
    resp = http("POST", "/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": echo.address,
                                          "enabled": True})
    assert resp.ok and resp.json()["listen"].split(":")[-1].isdigit()
    resp = http("POST", f"/proxies/{name}", json={"enabled": False})  # disable_proxy
    assert resp.ok and resp.json()["listen"].split(":")[-1].isdigit()
    assert http("POST", f"/proxies/{name}", json={}).ok  # modify_proxy with nothing to change
    resp = http("POST", f"/proxies/{name}/toxics", json={"name": "slow", "type": "latency", "stream": "downstream",
                                                          "toxicity": 1.0, "attributes": None})
    assert resp.ok and resp.json()["name"] == "slow"
    assert http("DELETE", f"/proxies/{name}/toxics/slow").ok
    assert http("GET", f"/proxies/{name}").json()["enabled"] is False
    assert http("DELETE", f"/proxies/{name}").ok


def _raw(server_url: str, data: bytes, until: bytes, timeout: float = 10) -> bytes:
    from urllib.parse import urlsplit

    parts = urlsplit(server_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        while until not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_keep_alive_pipelining_and_100_continue(server_url):
    two = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\nGET /proxies/none HTTP/1.1\r\nHost: x\r\n\r\n"
    got = _raw(server_url, two, b"proxy not found")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and b"HTTP/1.1 404 Not Found\r\n" in got
    body = b'{"upstream": "x:1"}'
    head = (b"POST /proxies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    from urllib.parse import urlsplit

    parts = urlsplit(server_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(head)
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(body)
        got = b""
        while b"missing required field: name" not in got:
            chunk = s.recv(65536)
            assert chunk
            got += chunk
    assert b"HTTP/1.1 400 Bad Request\r\n" in got


def test_chunked_request_body(server_url, client, name):
    body = ('{"name": "%s", "upstream": "127.0.0.1:9", "listen": "127.0.0.1:0"}' % name).encode()
    data = (b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    got = _raw(server_url, data, b"}")
    assert got.startswith(b"HTTP/1.1 201 Created\r\n")
