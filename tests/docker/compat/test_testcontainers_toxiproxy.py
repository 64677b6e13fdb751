"""@testcontainers/toxiproxy (Node), unchanged, runs our proxy image in place of Toxiproxy's.

The checks (container start and wait on /version, run labels, ports on
127.0.0.1 only, createProxy, a latency toxic measured from the host, the
down fault, stop) are in tests/compat/node/testcontainers-toxiproxy.mjs.
"""

from __future__ import annotations

import json
from contextlib import suppress

import docker

from chaos.images import ImageSet
from chaos.labels import RUN


def test_testcontainers_toxiproxy_module_runs_our_image(
    docker_engine, stack_images: ImageSet, echo_upstream, node_project
) -> None:
    identity = echo_upstream.identity
    env = {
        "PROXY_IMAGE": stack_images.proxy.ref,
        "RUN_LABELS": json.dumps(identity.labels()),
        "NETWORK": echo_upstream.network.name,
        "UPSTREAM": echo_upstream.upstream,
    }
    leftovers: list[str] = []
    try:
        result = node_project.run("testcontainers-toxiproxy.mjs", env, timeout=150)
    finally:
        # What the script started carries our run label: whatever it left behind goes
        # (before the module's network, which cannot go while containers are attached).
        for container in docker_engine.containers.list(all=True, filters={"label": f"{RUN}={identity.run_id}"}):
            if container.id != echo_upstream.container.id:
                leftovers.append(container.name)
                with suppress(docker.errors.NotFound):
                    container.remove(force=True, v=True)
    result.assert_passed("@testcontainers/toxiproxy", at_least=7)
    assert leftovers == [], "the container's stop() should have removed it"
