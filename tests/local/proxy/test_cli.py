"""``roomquake proxy serve``: flags, config file, one-line errors."""

from __future__ import annotations

import json
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
