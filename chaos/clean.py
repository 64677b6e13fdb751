"""Remove what dead runs left behind in Docker, and nothing else.

A resource is roomquake's when it carries ``io.roomquake.run``; its run is
dead when the owner process named by its labels is gone
(``chaos.labels.owner_alive``: pid plus process start time, this host only,
never ``io.roomquake.keep=1``). Containers go first, then networks (which a
container may still hold), then volumes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.engine import failure, id_of, network_is_stuck
from chaos.labels import OWNER_PID, RUN, owner_alive

if TYPE_CHECKING:
    import docker

KINDS = ("container", "network", "volume")  # removal order


@dataclass(frozen=True)
class Resource:
    kind: str  # "container" | "network" | "volume"
    id: str
    name: str
    labels: dict[str, str]
    handle: Any = field(compare=False, repr=False)

    @property
    def run_id(self) -> str:
        return self.labels.get(RUN, "")

    @property
    def owner_alive(self) -> bool:
        return owner_alive(self.labels)


@dataclass
class CleanReport:
    removed: list[Resource] = field(default_factory=list)
    kept: list[Resource] = field(default_factory=list)  # live runs (or kept, or another host's)
    failed: list[tuple[Resource, str]] = field(default_factory=list)
    stuck: list[Resource] = field(default_factory=list)  # networks the engine cannot remove (chaos.engine.network_is_stuck)

    def runs(self, resources: Iterable[Resource]) -> dict[str, list[Resource]]:
        grouped: dict[str, list[Resource]] = {}
        for resource in resources:
            grouped.setdefault(resource.run_id, []).append(resource)
        return grouped


def labelled_resources(client: docker.DockerClient) -> list[Resource]:
    """Every container, network and volume carrying io.roomquake.run, in removal order."""
    import docker

    query = {"label": RUN}
    try:
        # The low-level list: the high-level one inspects each container and
        # fails when another process removes one meanwhile.
        containers = client.api.containers(all=True, filters=query)
        networks = client.networks.list(filters=query)
        volumes = client.volumes.list(filters=query)
    except docker.errors.DockerException as exc:
        raise failure(exc, "listing labelled resources") from exc
    found = [
        Resource("container", c["Id"], (c.get("Names") or [c["Id"][:12]])[0].lstrip("/"), dict(c.get("Labels") or {}), client)
        for c in containers
    ]
    found += [Resource("network", id_of(n), n.name or id_of(n), dict(n.attrs.get("Labels") or {}), n) for n in networks]
    found += [Resource("volume", id_of(v), v.name, dict(v.attrs.get("Labels") or {}), v) for v in volumes]
    return found


def _remove(resource: Resource) -> None:
    if resource.kind == "container":  # handle: the client
        resource.handle.api.remove_container(resource.id, force=True, v=True)
    else:  # handle: the network or volume model
        resource.handle.remove()


def clean(
    client: docker.DockerClient,
    *,
    include_live: bool = False,
    dry_run: bool = False,
    only_runs: set[str] | None = None,
    progress: Callable[[Resource], None] = lambda _: None,
) -> CleanReport:
    """Remove the labelled resources of dead runs (all runs with ``include_live``).

    ``only_runs`` limits the sweep to those run ids. Resources that vanish
    meanwhile (their run cleaned up after itself) count as removed.
    """
    import docker

    report = CleanReport()
    for resource in labelled_resources(client):
        if only_runs is not None and resource.run_id not in only_runs:
            continue
        if not include_live and resource.owner_alive:
            report.kept.append(resource)
            continue
        if not dry_run:
            try:
                _remove(resource)
            except docker.errors.NotFound:
                pass
            except docker.errors.DockerException as exc:
                if resource.kind == "network" and network_is_stuck(client, resource.id, exc):
                    report.stuck.append(resource)
                    continue
                report.failed.append((resource, failure(exc, f"removing {resource.kind} {resource.name}").one_line()))
                continue
        report.removed.append(resource)
        progress(resource)
    return report


def describe_owner(resource: Resource) -> str:
    return f"pid {resource.labels.get(OWNER_PID, '?')}"
