"""The proxy image alone (no Node needed): its default command is a Toxiproxy API on 8474, as Toxiproxy's image has it."""

from __future__ import annotations

import socket

from chaos.stack.containers import ContainerSpec, http_probe, run_container, wait_ready
from chaos.images import ImageSet
from chaos.images.config import BASE, KIND
from chaos.proxy.client import ProxyClient


def test_default_command_serves_the_api_and_proxies_to_an_upstream(
    docker_engine, stack_images: ImageSet, echo_upstream
) -> None:
    image = docker_engine.images.get(stack_images.proxy.ref)
    assert image.labels[KIND] == "proxy" and image.labels[BASE] == stack_images.services.ref
    assert "8474/tcp" in image.attrs["Config"]["ExposedPorts"]
    spec = ContainerSpec(image=stack_images.proxy.ref, name="proxy", service="proxy", instance="proxy", ports=(8474, 8666))
    with run_container(docker_engine, echo_upstream.identity, echo_upstream.network, spec) as proxy:  # command: the image's
        url = "http://{}:{}".format(*proxy.address(8474))
        wait_ready(proxy, http_probe(url + "/version"), timeout=60)
        with ProxyClient(url) as client:
            client.create("echo", listen="0.0.0.0:8666", upstream=echo_upstream.upstream)
        with socket.create_connection(proxy.address(8666), timeout=10) as conn:
            conn.sendall(b"through the proxy image\n")
            received = b""
            while not received.endswith(b"\n"):
                chunk = conn.recv(100)
                assert chunk, f"closed after {received!r}"
                received += chunk
        assert received == b"through the proxy image\n"
