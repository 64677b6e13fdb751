"""Node.js clients against our proxy image: an echo upstream (``node_project`` comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chaos.stack.containers import ContainerSpec, ManagedContainer, RunNetwork, run_container, run_network, tcp_probe, wait_ready
from chaos.labels import RunIdentity


ECHO_PORT = 7000
ECHO = f"""
import socket, threading
server = socket.create_server(("0.0.0.0", {ECHO_PORT}))
def serve(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


@dataclass(frozen=True)
class EchoUpstream:
    identity: RunIdentity  # whose labels everything of the module carries
    network: RunNetwork
    container: ManagedContainer
    upstream: str  # as containers on ``network`` dial it: "echo:7000"


@pytest.fixture(scope="module")
def echo_upstream(docker_engine, stack_images) -> Iterator[EchoUpstream]:
    """A run network and a line echo server on it, reachable there by the name ``echo``."""
    identity = RunIdentity()
    spec = ContainerSpec(
        image=stack_images.services.ref, name="echo", service="echo", instance="echo",
        command=["python", "-c", ECHO], ports=(ECHO_PORT,),
    )
    with run_network(docker_engine, identity, pinnable=False) as network:
        with run_container(docker_engine, identity, network, spec) as echo:
            wait_ready(echo, tcp_probe(*echo.address(ECHO_PORT)), timeout=60)
            yield EchoUpstream(identity, network, echo, f"echo:{ECHO_PORT}")
