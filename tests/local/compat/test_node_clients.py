"""toxiproxy-node-client, unchanged, drives our server: a real server process, a real echo upstream.

The checks themselves (responses' shapes, latency measured through a real
connection, the down fault, reset, populate, delete) are in
tests/compat/node/toxiproxy-node-client.mjs. With TOXIPROXY_URL set, the
same script runs against that server instead (e.g. a real Toxiproxy).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def proxy_url() -> Iterator[str]:
    """``python -m chaos.proxy --port 0 --seed 1``, or TOXIPROXY_URL's server."""
    if os.environ.get("TOXIPROXY_URL"):
        yield os.environ["TOXIPROXY_URL"].rstrip("/")
        return
    with tempfile.TemporaryFile("w+") as log:  # a pipe nobody reads could fill up and stall the server
        proc = subprocess.Popen(
            [sys.executable, "-m", "chaos.proxy", "--port", "0", "--seed", "1"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        )
        try:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert "API on " in line, f"proxy server did not start: {line!r}"
            yield line.split("API on ", 1)[1].split()[0]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=10)
            proc.stdout.close()  # type: ignore[union-attr]
            log.seek(0)
            errors = log.read()
        assert code == 0 and "Traceback" not in errors, errors


@pytest.fixture(scope="module")
def echo_address() -> Iterator[str]:
    """A threaded line-agnostic echo server on 127.0.0.1."""
    server = socket.create_server(("127.0.0.1", 0))
    conns: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conns.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in conns:
        try:
            conn.close()
        except OSError:
            pass


def test_toxiproxy_node_client_works_unchanged(node_project, proxy_url: str, echo_address: str) -> None:
    result = node_project.run(
        "toxiproxy-node-client.mjs", {"TOXIPROXY_URL": proxy_url, "UPSTREAM": echo_address}, timeout=120
    )
    result.assert_passed("toxiproxy-node-client", at_least=16)
