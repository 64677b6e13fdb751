"""Where an instance's container lives: its process (whose network namespace packet faults enter) and its addresses.

Both container backends answer through labels and engines the toolkit
already has: on ``docker`` the container carrying the run's and the
instance's labels on the host engine; on ``swarm`` the current task's
container on its node's engine (a local cluster's node engines share the
host's pid namespace, so the pid is the host's). The local backend has no
namespaces of its own: packet faults are refused there beforehand.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaos import labels as L
from chaos.stack.errors import StackError, Unsupported

if TYPE_CHECKING:
    import docker

# Networks a container may be on that are not the run's own (swarm's egress bridge, the routing mesh).
NOT_THE_RUNS = frozenset({"docker_gwbridge", "ingress", "bridge", "host", "none"})


@dataclass(frozen=True)
class Namespace:
    """One instance's container as packet faults see it."""

    instance: str
    pid: int  # its first process on the host: ``nsenter -t pid -n`` enters its network namespace
    addresses: tuple[str, ...]  # its IPv4 addresses on the run's network(s)


def _inspect(engine: "docker.DockerClient", container: str, instance: str) -> Namespace | None:
    import docker

    try:
        attrs = engine.api.inspect_container(container)
    except docker.errors.NotFound:
        return None
    except docker.errors.DockerException as err:
        raise StackError(f"inspecting the container of {instance}: {err}") from None
    pid = int(attrs.get("State", {}).get("Pid") or 0)
    if pid <= 0:
        return None  # not running: no namespace to enter
    networks = attrs.get("NetworkSettings", {}).get("Networks") or {}
    addresses = tuple(sorted(str(n["IPAddress"]) for name, n in networks.items()
                             if name not in NOT_THE_RUNS and n.get("IPAddress")))
    return Namespace(instance, pid, addresses)


def _docker_namespace(stack: Any, instance: str) -> Namespace | None:
    from chaos.engine import connect

    with contextlib.closing(connect(timeout=30)) as engine:
        query = {"label": [f"{L.RUN}={stack.run_id}", f"{L.INSTANCE}={instance}"]}
        found = engine.api.containers(filters=query)  # running ones only
        return _inspect(engine, str(found[0]["Id"]), instance) if found else None


def namespace(stack: Any, instance: str) -> Namespace | None:
    """The running container of ``instance`` (None: it is not running, so it has no namespace to act on)."""
    kind = stack.backend_kind
    if kind == "docker":
        return _docker_namespace(stack, instance)
    if kind == "swarm":
        located = stack.backend.task_container(instance)  # the node engine's client: the backend keeps it
        if located is None:
            return None
        engine, container = located
        return _inspect(engine, container, instance)
    raise Unsupported(f"{instance}: the {kind} backend runs processes without network namespaces of their own; "
                      "packet faults need --backend docker or swarm")


def proxy_port(listen: str) -> int:
    """The port of a proxy listener as the stack plan writes it (``0.0.0.0:20003``)."""
    return int(listen.rsplit(":", 1)[1])
