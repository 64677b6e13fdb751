"""Swarm resources of runs, by label: list them, remove one run's, sweep dead runs' (``roomquake clean``).

A run's services, overlay network and configs carry ``io.roomquake.run``
and the owner labels (chaos.labels), exactly as its containers do on the
docker backend; its node labels (slots, chaos.stack.swarm_slots) name the
run in their key and the owner in their value; a run is dead when its owner process is gone, and
``io.roomquake.keep=1`` (``stack up``) is never swept. Services go first;
the network follows once their tasks have left it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chaos.labels import OWNER_PID, RUN, owner_alive
from chaos.stack import swarm_slots as slots
from chaos.stack.errors import StackError

if TYPE_CHECKING:
    import docker

KINDS = ("service", "network", "config", "volume", "node label")  # removal order (volumes live on the nodes)


def labelled(client: "docker.DockerClient", run_id: str | None = None) -> list[tuple[str, str, str, dict[str, str]]]:
    """(kind, id, name, labels) of every labelled swarm resource (of ``run_id`` only, if given)."""
    query = {"label": f"{RUN}={run_id}" if run_id else RUN}
    found: list[tuple[str, str, str, dict[str, str]]] = []
    for svc in client.api.services(filters=query):
        found.append(("service", svc["ID"], svc["Spec"]["Name"], dict(svc["Spec"].get("Labels") or {})))
    for net in client.api.networks(filters={**query, "driver": "overlay"}):
        found.append(("network", net["Id"], net["Name"], dict(net.get("Labels") or {})))
    for cfg in client.api.configs(filters=query):
        found.append(("config", cfg["ID"], cfg["Spec"]["Name"], dict(cfg["Spec"].get("Labels") or {})))
    for slot in slots.labels_of(client, run_id):
        found.append(("node label", slot.node_id, f"{slot.key} on {slot.hostname or slot.node_id[:12]}",
                      slots.owner_labels(slot.run_id, slot.value)))
    return found


def run_resources(client: "docker.DockerClient", run_id: str, nodes: Iterable["docker.DockerClient"] = ()) -> list[tuple[str, str, str]]:
    """(kind, id, name) of the run's services, networks, configs and node labels, and its volumes on ``nodes``."""
    found = [(kind, rid, name) for kind, rid, name, _ in labelled(client, run_id)]
    for node in nodes:
        volumes = (node.api.volumes(filters={"label": f"{RUN}={run_id}"}) or {}).get("Volumes") or []
        found += [("volume", v["Name"], v["Name"]) for v in volumes]
    return found


def remove_run(client: "docker.DockerClient", run_id: str, timeout: float = 90.0,
               nodes: Iterable["docker.DockerClient"] = ()) -> None:
    """Remove every service, overlay network, config and node label of ``run_id``, and its volumes on ``nodes``.

    Raises if some remain after ``timeout``.
    """
    import docker

    nodes = list(nodes)
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        # In KINDS order: the services first, so their tasks begin to leave the network at once.
        left = sorted(run_resources(client, run_id), key=lambda r: KINDS.index(r[0]))
        labels_done = False
        for kind, rid, name in left:
            if kind == "node label" and labels_done:
                continue
            try:
                if kind == "service":
                    client.api.remove_service(rid)
                elif kind == "network":
                    client.api.remove_network(rid)  # refused while a task still holds an endpoint on it
                elif kind == "node label":
                    labels_done = True
                    slots.remove_run(client, run_id)  # every label of the run, on every node, at once
                else:
                    client.api.remove_config(rid)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as err:
                last = f"{kind} {name}: {getattr(err, 'explanation', None) or err}"
            except StackError as err:
                last = f"{kind} {name}: {err.one_line()}"
        for node in nodes:  # a volume goes once the task container that used it is gone
            last = remove_volumes(node, {"label": f"{RUN}={run_id}"}) or last
        if not run_resources(client, run_id, nodes):
            return
        if time.monotonic() > deadline:
            raise StackError(f"run {run_id}: swarm resources left after {timeout:g}s; last refusal: {last or 'none'}")
        time.sleep(0.5)


def remove_volumes(node: "docker.DockerClient", filters: dict[str, str]) -> str:
    """Remove the volumes matching ``filters`` on one node; returns the last refusal ('' if none)."""
    import docker

    last = ""
    for volume in (node.api.volumes(filters=filters) or {}).get("Volumes") or []:
        try:
            node.api.remove_volume(volume["Name"], force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as err:
            last = f"volume {volume['Name']}: {getattr(err, 'explanation', None) or err}"
    return last


def reachable_managers() -> dict[str, "docker.DockerClient"]:
    """Every swarm manager this machine knows of: DOCKER_HOST, local clusters that are up, the default engine."""
    from chaos.cluster.record import UP, records
    from chaos.engine import DEFAULT_SOCKET, connect
    from chaos.errors import RoomquakeError

    urls = [os.environ.get("DOCKER_HOST", "")]
    with contextlib.suppress(Exception):
        urls += [r.manager_socket for r in records() if r.state == UP]
    urls.append(f"unix://{DEFAULT_SOCKET}")
    found: dict[str, Any] = {}
    for url in dict.fromkeys(u for u in urls if u):
        try:
            client = connect(timeout=15, environ={**os.environ, "DOCKER_HOST": url})
        except RoomquakeError:
            continue
        try:
            if client.info().get("Swarm", {}).get("ControlAvailable"):
                found[url] = client
                continue
        except Exception:  # noqa: BLE001 - an engine that does not answer has nothing to sweep
            pass
        client.close()
    return found


def sweep(dry_run: bool = False, include_live: bool = False) -> list[str]:
    """Remove the swarm resources of dead runs (of every run with ``include_live``, except kept ones); one line per run."""
    done: list[str] = []
    for url, client in reachable_managers().items():
        try:
            runs: dict[str, list[tuple[str, str, str, dict[str, str]]]] = defaultdict(list)
            for resource in labelled(client):
                runs[resource[3].get(RUN, "")].append(resource)
            for run_id, resources in sorted(runs.items()):
                owner = resources[0][3]
                if owner.get("io.roomquake.keep") == "1" or (not include_live and owner_alive(owner)):
                    continue
                counts = ", ".join(f"{sum(1 for r in resources if r[0] == k)} {k}(s)" for k in KINDS
                                   if any(r[0] == k for r in resources))
                verb = "would remove" if dry_run else "removed"
                if not dry_run:
                    try:
                        remove_run(client, run_id, nodes=_nodes_of(url))
                    except StackError as err:
                        done.append(f"swarm run {run_id} on {url}: {err.one_line()}")
                        continue
                done.append(f"{verb} swarm run {run_id} on {url} (owner pid {owner.get(OWNER_PID, '?')}): {counts}")
        finally:
            client.close()
    return done


def _nodes_of(url: str) -> list["docker.DockerClient"]:
    from chaos.stack.swarm_engines import SwarmEngines

    try:
        return SwarmEngines.for_manager(url).all_nodes()
    except StackError:
        return []


def end_pending(record: dict[str, Any], dry_run: bool = False) -> str:
    """Remove what a swarm bring-up whose owner died had created (on the swarm it recorded)."""
    from chaos.stack.swarm_engines import SwarmEngines

    run_id = record["run_id"]
    state = record.get("state", {})
    owner = record.get("owner", {})
    pid = owner.get(OWNER_PID) or state.get("owner", {}).get("pid", "?")
    verb = "would remove" if dry_run else "removed"
    if not dry_run:
        engines = SwarmEngines.choose(state.get("swarm"))
        try:
            remove_run(engines.manager, run_id, nodes=engines.all_nodes())
        finally:
            engines.close()
    return f"{run_id}: {verb} the swarm services and network of a bring-up whose owner pid {pid} died"
