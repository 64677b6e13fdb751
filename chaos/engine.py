"""Connect to the Docker engine, turning every way that fails into one line.

The Docker SDK reports a missing socket, a stopped daemon and a refused
permission all as "Error while fetching server API version: ...". Users need
to know which of the three it is and what to do, so ``connect`` digs the
root cause out of the exception chain.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from chaos.errors import EngineError, EnvironmentProblem

if TYPE_CHECKING:
    import docker
    from docker.models.resource import Model

DEFAULT_SOCKET = "/var/run/docker.sock"


class NoEngine(EngineError):
    """No Docker engine is installed on this machine."""


class EngineUnreachable(EngineError):
    """An engine is installed or configured but does not answer."""


class EnginePermission(EngineError):
    """The engine answers only to users allowed on its socket."""


class DiskFull(EnvironmentProblem):
    """The engine or a build ran out of disk space."""


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """Every exception in ``exc``'s chain, including ones kept in ``args``.

    urllib3 keeps the socket error as an argument of ProtocolError rather than
    as its cause, so plain ``__cause__`` walking is not enough.
    """
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                todo.append(linked)


def engine_address(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def _engine_installed() -> bool:
    # The daemon, not the client: a docker CLI alone does not make an engine.
    return shutil.which("dockerd") is not None


def explain(exc: BaseException, environ: Mapping[str, str] | None = None) -> EngineError:
    """The one-line error that says why talking to the engine failed."""
    env = os.environ if environ is None else environ
    address = engine_address(env)
    causes = list(_causes(exc))
    if any(isinstance(c, PermissionError) for c in causes):
        return EnginePermission(
            f"permission denied on the Docker engine at {address}",
            hint="run as root, or add your user to the 'docker' group and log in again",
        )
    missing_socket = any(isinstance(c, FileNotFoundError) for c in causes)
    if missing_socket and not _engine_installed() and not env.get("DOCKER_HOST"):
        return NoEngine(
            "no Docker engine is installed",
            hint="install one (Debian: apt-get install -y docker.io) or use the local backend",
        )
    if missing_socket or any(isinstance(c, ConnectionRefusedError) for c in causes):
        return EngineUnreachable(
            f"the Docker engine at {address} is not running",
            hint="start it: systemctl start docker, or setsid dockerd >/tmp/dockerd.log 2>&1 &",
        )
    if any(isinstance(c, TimeoutError) or "timed out" in str(c).lower() for c in causes):
        return EngineUnreachable(
            f"the Docker engine at {address} did not answer in time",
            hint="check that it is running and not overloaded: docker info",
        )
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return EngineUnreachable(
        f"cannot talk to the Docker engine at {address}: {first_line}",
        hint="check DOCKER_HOST and that `docker info` works",
    )


def connect(timeout: int = 60, environ: dict[str, str] | None = None) -> docker.DockerClient:
    """A Docker SDK client that has answered a ping, or an EngineError.

    Uses DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) like the docker
    CLI does, else the engine's default socket.
    """
    import docker

    env = dict(os.environ if environ is None else environ)
    try:
        if env.get("DOCKER_HOST"):
            client = docker.from_env(timeout=timeout, environment=env)
        else:
            client = docker.DockerClient(base_url=f"unix://{DEFAULT_SOCKET}", timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise explain(exc, env) from exc
    except OSError as exc:  # e.g. a bad TLS setup raises before the SDK wraps it
        raise explain(exc, env) from exc
    return client


def is_disk_full(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return True
        if "no space left on device" in str(cause).lower():
            return True
    return False


def disk_full(what: str, where: str) -> DiskFull:
    return DiskFull(
        f"disk full while {what} ({where})",
        hint="free some space (df -h; docker system df; roomquake images prune) and try again",
    )


def failure(exc: BaseException, doing: str) -> EngineError | DiskFull:
    """The one-line error for a failed engine request made while ``doing`` something."""
    if is_disk_full(exc):
        return disk_full(doing, "the Docker engine's data root")
    import docker

    if isinstance(exc, docker.errors.APIError):  # the engine answered, and said no
        explanation = getattr(exc, "explanation", None) or str(exc)
        return EngineError(f"the Docker engine refused {doing}: {str(explanation).strip()[:300]}")
    return explain(exc)


def id_of(model: Model) -> str:
    """The id of a Docker object the engine listed or returned (docker's own types leave it optional: an
    object not yet created has none)."""
    found = model.id
    if not isinstance(found, str):
        raise EngineError(f"the engine gave a {type(model).__name__} without an id")
    return found


STUCK_NETWORK_HINT = (
    "it holds no container, but the engine keeps an endpoint of a removed one (a Docker bug, moby#42119); "
    "it goes when the engine restarts"
)


def network_is_stuck(client: docker.DockerClient, network_id: str, exc: BaseException) -> bool:
    """The engine refused to remove a network for "active endpoints" while no container is on it.

    Docker 20.10 sometimes keeps the endpoint of a force-removed container
    for good (seen 2 times in some hundreds of teardowns at load 15-25): no
    API call removes it and `docker network disconnect -f` does not find it.
    Such a network holds nothing of a run but its name and subnet.
    """
    import docker

    if "active endpoints" not in str(exc):
        return False
    try:
        attached = client.api.inspect_network(network_id).get("Containers") or {}
    except docker.errors.DockerException:
        return False
    return not attached
