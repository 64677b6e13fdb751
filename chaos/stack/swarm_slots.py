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
launch, a drain fault): chaos.stack.swarm_placement.edit_node.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from chaos.labels import KEEP, OWNER_HOST, OWNER_PID, OWNER_START, RUN, RunIdentity
from chaos.stack.swarm_placement import edit_node

if TYPE_CHECKING:
    import docker

PREFIX = "io.roomquake.slot."


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
    """Set (or with None, remove) labels on one node."""
    def edit(spec: dict[str, Any]) -> dict[str, Any] | None:
        labels = dict(spec.get("Labels") or {})
        wanted = {k: v for k, v in {**labels, **changes}.items() if v is not None}
        return None if wanted == labels else {**spec, "Labels": wanted}

    edit_node(client, node_id, edit, doing, gone_ok=True)  # a node that left the swarm holds nothing of ours


def put(client: "docker.DockerClient", node_ids: Iterable[str], slot_key: str, owner: str) -> None:
    for node_id in node_ids:
        _write(client, node_id, {slot_key: owner}, f"labelling node {node_id[:12]} for {slot_key}")


def clear(client: "docker.DockerClient", slot_key: str) -> None:
    """Remove the slot's label from every node."""
    for node in client.api.nodes():
        if slot_key in (node["Spec"].get("Labels") or {}):
            _write(client, node["ID"], {slot_key: None}, f"unlabelling node {node['ID'][:12]}")


class SlotLabel(NamedTuple):
    node_id: str
    hostname: str
    key: str
    run_id: str
    value: str


def labels_of(client: "docker.DockerClient", run_id: str | None = None) -> list[SlotLabel]:
    """Every slot label on the swarm's nodes (of ``run_id`` only, if given)."""
    found = []
    for node in client.api.nodes():
        for label, value in (node["Spec"].get("Labels") or {}).items():
            owner = run_of(label)
            if owner and (run_id is None or owner[0] == run_id):
                found.append(SlotLabel(node["ID"], str(node.get("Description", {}).get("Hostname", "")), label,
                                       owner[0], str(value)))
    return found


def remove_run(client: "docker.DockerClient", run_id: str) -> None:
    by_node: dict[str, dict[str, str | None]] = {}
    for found in labels_of(client, run_id):
        by_node.setdefault(found.node_id, {})[found.key] = None
    for node_id, changes in by_node.items():
        _write(client, node_id, changes, f"removing run {run_id}'s slots from node {node_id[:12]}")
