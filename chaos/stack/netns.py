"""Where an instance's container lives: its process (whose network namespace packet faults enter) and its addresses.

Each backend answers (``Backend.container_of``) through labels and engines
the toolkit already has: on ``docker`` the container carrying the run's and
the instance's labels on the host engine; on ``swarm`` the current task's
container on its node's engine (a local cluster's node engines share the
host's pid namespace, so the pid is the host's); on an attached Compose
project the project's container. The local backend has no namespaces of its
own: packet faults are refused there beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaos.stack.errors import StackError

if TYPE_CHECKING:
    import docker

    from chaos.stack.contract import LiveStack

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


def namespace(stack: LiveStack, instance: str) -> Namespace | None:
    """The running container of ``instance`` (None: it is not running, so it has no namespace to act on).

    The backend finds it: by the run's labels on ``docker``, the current task's container on its
    node on ``swarm``, the project's container when a Compose project is attached; the local
    backend refuses (``Unsupported``)."""
    return located_namespace(stack.container_of(instance), instance)


def located_namespace(located: tuple["docker.DockerClient", str] | None, instance: str) -> Namespace | None:
    """The namespace of a container a backend found (``container_of``'s answer; None: not running)."""
    if located is None:
        return None
    engine, container = located
    return _inspect(engine, container, instance)


def proxy_port(listen: str) -> int:
    """The port of a proxy listener as the stack plan writes it (``0.0.0.0:20003``)."""
    return int(listen.rsplit(":", 1)[1])
