"""Slots: the node labels that place a reschedulable instance on a swarm, and let the swarm move it.

A spread instance with ``reschedule`` (chaos.stack.swarm_placement) is
constrained to ``node.labels.io.roomquake.slot.<run>.<instance>==<owner>``.
The label goes on its first node before its service is created, and on the
other eligible nodes once its task is placed: swarm does not move a running
task when a node gains a label, so the spread holds, and when the node is
lost the swarm starts the task again on a node that carries the slot.

A node label carries no owner labels, so its value names the owner
(``host:pid:start``, or ``keep`` for a kept stack): ``roomquake clean`` can
then judge a run that left nothing but labels. Labels are written with the
node's version and written again when another writer moved it (a parallel
launch, a drain fault).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from chaos.labels import KEEP, OWNER_HOST, OWNER_PID, OWNER_START, RUN, RunIdentity
from chaos.stack.errors import StackError

if TYPE_CHECKING:
    import docker

PREFIX = "io.roomquake.slot."
WRITE_TRIES = 20


def key(run_id: str, instance: str) -> str:
    return f"{PREFIX}{run_id}.{instance}"


def constraint(run_id: str, instance: str, owner: str) -> str:
    return f"node.labels.{key(run_id, instance)}=={owner}"


def owner_value(identity: RunIdentity) -> str:
    """The label's value: who made it (``keep`` for a stack that outlives its process)."""
    labels = identity.labels()
    if labels.get(KEEP) == "1":
        return "keep"
    return f"{labels[OWNER_HOST]}:{labels[OWNER_PID]}:{labels[OWNER_START]}"


def owner_labels(run_id: str, value: str) -> dict[str, str]:
    """The owner labels a slot's value stands for (as chaos.labels.owner_alive reads them)."""
    if value == "keep":
        return {RUN: run_id, KEEP: "1"}
    host, _, rest = value.partition(":")
    pid, _, start = rest.partition(":")
    return {RUN: run_id, OWNER_HOST: host, OWNER_PID: pid, OWNER_START: start}


def run_of(label: str) -> tuple[str, str] | None:
    """(run id, instance) of a slot label's key, None for any other label."""
    if not label.startswith(PREFIX):
        return None
    run_id, _, instance = label.removeprefix(PREFIX).partition(".")
    return (run_id, instance) if run_id and instance else None


def _write(client: "docker.DockerClient", node_id: str, changes: dict[str, str | None], doing: str) -> None:
    """Set (or with None, remove) labels on one node, read-modify-write with the node's version."""
    import docker

    last: Exception | None = None
    for _ in range(WRITE_TRIES):
        try:
            node = client.nodes.get(node_id)
            spec = dict(node.attrs["Spec"])
            labels = dict(spec.get("Labels") or {})
            wanted = {**labels, **{k: v for k, v in changes.items() if v is not None}}
            for k, v in changes.items():
                if v is None:
                    wanted.pop(k, None)
            if wanted == labels:
                return
            spec["Labels"] = wanted
            node.update(spec)  # with the version read above: refused if the node moved since
            return
        except docker.errors.NotFound:
            return  # the node left the swarm: nothing of ours is on it
        except docker.errors.APIError as err:
            if "out of sequence" not in str(err):
                raise StackError(f"{doing}: {getattr(err, 'explanation', None) or err}") from err
            last = err
            time.sleep(0.05)
    raise StackError(f"{doing}: node {node_id[:12]} kept changing under us ({last})")


def put(client: "docker.DockerClient", node_ids: Iterable[str], slot_key: str, owner: str) -> None:
    for node_id in node_ids:
        _write(client, node_id, {slot_key: owner}, f"labelling node {node_id[:12]} for {slot_key}")


def clear(client: "docker.DockerClient", slot_key: str, keep_on: Iterable[str] = ()) -> None:
    """Remove the slot's label from every node but ``keep_on``."""
    keep = set(keep_on)
    for node in client.api.nodes():
        if node["ID"] not in keep and slot_key in (node["Spec"].get("Labels") or {}):
            _write(client, node["ID"], {slot_key: None}, f"unlabelling node {node['ID'][:12]}")


def labels_of(client: "docker.DockerClient", run_id: str | None = None) -> list[tuple[str, str, str, str]]:
    """(node id, hostname, key, value) of every slot label (of ``run_id`` only, if given)."""
    found = []
    for node in client.api.nodes():
        for label, value in (node["Spec"].get("Labels") or {}).items():
            owner = run_of(label)
            if owner and (run_id is None or owner[0] == run_id):
                found.append((node["ID"], str(node.get("Description", {}).get("Hostname", "")), label, str(value)))
    return found


def remove_run(client: "docker.DockerClient", run_id: str) -> None:
    by_node: dict[str, dict[str, str | None]] = {}
    for node_id, _, label, _ in labels_of(client, run_id):
        by_node.setdefault(node_id, {})[label] = None
    for node_id, changes in by_node.items():
        _write(client, node_id, changes, f"removing run {run_id}'s slots from node {node_id[:12]}")
