"""``roomquake proxy serve``: flags, config file, one-line errors."""

from __future__ import annotations

import json

import pytest
import socket
import subprocess
import sys

from chaos.proxy.client import ProxyClient


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", "proxy", "serve", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_non_loopback_api_needs_a_flag():
    done = run_cli("--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert "--allow-remote" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "proxies.json"
    bad.write_text('[{"name": "a"}]')
    done = run_cli("--port", "0", "--config", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(bad) in done.stderr and "upstream" in done.stderr
    bad.write_text("{nope")
    done = run_cli("--port", "0", "--config", str(bad))
    assert done.returncode == 2 and "not valid JSON" in done.stderr


def test_api_port_in_use_is_one_line():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        done = run_cli("--port", str(taken.getsockname()[1]))
    assert done.returncode == 2 and "cannot listen" in done.stderr and "Traceback" not in done.stderr


def test_config_creates_proxies(tmp_path, start_server, echo):
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "redis", "listen": "127.0.0.1:0", "upstream": echo.address}]))
    server = start_server("--config", str(config))
    with ProxyClient(server.url) as c:
        assert c.proxies()["redis"].upstream == echo.address


def test_config_also_loads_toxics_beyond_toxiproxy(tmp_path, start_server, echo, sockets):
    """Toxiproxy #281: toxics listed in the config file are in place at start."""
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": "redis", "listen": "127.0.0.1:0", "upstream": echo.address,
                                   "toxics": [{"type": "latency", "stream": "upstream",
                                               "attributes": {"latency": 200}},
                                              {"name": "cap", "type": "limit_data", "attributes": {"bytes": 4}}]}]))
    server = start_server("--config", str(config))
    with ProxyClient(server.url) as c:
        info = c.proxies()["redis"]
        assert {t.name: t.type for t in info.toxics} == {"cap": "limit_data", "latency_upstream": "latency"}
    with sockets.connect(info.port) as s:
        started = sockets.time.monotonic()
        s.sendall(b"ping!")
        assert sockets.recv_all(s) == b"ping"  # up 200 ms late, echoed, 4 bytes back, then closed
        assert sockets.time.monotonic() - started >= 0.15


def test_config_refuses_a_bad_toxic_with_its_place(tmp_path, echo):
    config = tmp_path / "proxies.json"
    config.write_text('[\n  {"name": "a", "upstream": "%s", "listen": "127.0.0.1:0",\n'
                      '   "toxics": [{"type": "latency"},\n              {"type": "lag"}]}\n]' % echo.address)
    done = run_cli("--port", "0", "--config", str(config))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{config}:4:15: proxy 1 (a), toxic 2: invalid toxic type" in done.stderr


def test_hostile_configs_are_refused_fast_with_one_located_line(tmp_path):
    cases = {
        "huge.json": b"[" + b'{"name": "a", "upstream": "x:1"},' * 200_000 + b"{}]",
        "deep.json": b"[" * 100_000,
        "types.json": b'[{"name": "a", "upstream": 5}]',
        "top.json": b'{"name": "a"}',
        "bytes.json": b'[{"name": "\xff"}]',
    }
    expect = {"huge.json": "limit", "deep.json": ":1:33: nested deeper", "types.json": ":1:28: proxy 1 (a): field 'upstream'",
              "top.json": ":1:1: expected a JSON array", "bytes.json": "not UTF-8"}
    for file_name, content in cases.items():
        path = tmp_path / file_name
        path.write_bytes(content)
        done = run_cli("--port", "0", "--config", str(path))
        assert done.returncode == 2, file_name
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expect[file_name] in lines[0], (file_name, done.stderr)


def test_api_token_guards_every_request(start_server, echo, monkeypatch):
    """Contract C3: --token-env VAR; Authorization: Bearer <token> or 401 with a JSON body."""
    import os

    import requests

    from chaos.proxy.client import ProxyUnauthorized

    monkeypatch.setenv("RQ_TEST_PROXY_TOKEN", "s3cret")
    server = start_server("--token-env", "RQ_TEST_PROXY_TOKEN")
    assert os.environ["RQ_TEST_PROXY_TOKEN"] == "s3cret"
    for path in ("/version", "/proxies", "/nope"):
        resp = requests.get(server.url + path, timeout=5)
        assert resp.status_code == 401 and resp.json() == {"error": "missing or wrong API token", "status": 401}
    assert requests.get(server.url + "/version", headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    with ProxyClient(server.url) as anonymous, pytest.raises(ProxyUnauthorized):
        anonymous.proxies()
    with ProxyClient(server.url, token="s3cret") as c:
        assert c.version() == "2.12.0"
        assert c.create("a", "127.0.0.1:0", echo.address).enabled


def test_no_token_is_exactly_toxiproxy(start_server, monkeypatch):
    import requests

    monkeypatch.delenv("RQ_TEST_PROXY_TOKEN", raising=False)
    server = start_server("--token-env", "RQ_TEST_PROXY_TOKEN")  # unset: off
    assert requests.get(server.url + "/version", timeout=5).status_code == 200
