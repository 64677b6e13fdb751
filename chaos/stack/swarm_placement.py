"""Placement of a stack's instances on swarm nodes: the stack file's ``placement:`` made concrete.

Each instance is its own single-task swarm service (see chaos.stack.swarm
for why), so "spread the instances of edge over the nodes" cannot be left to
swarm's per-service spread preference: it is computed here, round robin over
the eligible nodes. An instance that may be rescheduled (``spread`` with
``reschedule``, the default) is placed by a node label of its own (its
"slot", chaos.stack.swarm_slots): set on its first node before its service
is created, and on the other eligible nodes once its task is placed there.
Swarm never moves a running task when a label is added, so the spread holds,
and when the node is lost the swarm restarts the task on another node that
carries the slot. Other spread or ``per_node`` instances get a ``node.id==``
constraint and stay. Without ``spread`` the swarm scheduler places each
instance (it favours the node running the fewest tasks) and may move it when
its node is lost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.stack.errors import StackError
from chaos.stack.spec import PlacementSpec, StackSpec

if TYPE_CHECKING:
    import docker

NODE_LABEL = "io.roomquake.node"  # set by chaos.cluster: the node's index in a local cluster
_CONSTRAINT = re.compile(r"^\s*node\.([A-Za-z0-9_.-]+)\s*(==|!=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str  # manager | worker
    labels: dict[str, str] = field(default_factory=dict)
    address: str = ""
    ready: bool = True  # status ready and availability active

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "Node":
        spec = attrs.get("Spec", {})
        status = attrs.get("Status", {})
        return cls(
            id=str(attrs["ID"]),
            hostname=str(attrs.get("Description", {}).get("Hostname", "")),
            role=str(spec.get("Role", "worker")),
            labels=dict(spec.get("Labels") or {}),
            address=str(status.get("Addr", "")),
            ready=status.get("State") == "ready" and spec.get("Availability", "active") == "active",
        )

    def attribute(self, name: str) -> str | None:
        if name.startswith("labels."):
            return self.labels.get(name.removeprefix("labels."))
        return {"id": self.id, "hostname": self.hostname, "role": self.role}.get(name)


def order(nodes: Sequence[Node]) -> list[Node]:
    """Stable node order: a local cluster's index, else hostname, else id."""
    def key(node: Node) -> tuple[int, str, str]:
        index = node.labels.get(NODE_LABEL, "")
        return (int(index) if index.isdigit() else 1_000_000, node.hostname, node.id)

    return sorted(nodes, key=key)


def satisfies(node: Node, constraint: str) -> bool:
    """Swarm's constraint semantics for ``node.<attribute>==|!=value`` (a missing label never equals)."""
    match = _CONSTRAINT.match(constraint)
    if not match:
        raise StackError(f"placement constraint {constraint!r} must read node.<attribute>==<value> or !=")
    attribute, op, wanted = match.groups()
    value = node.attribute(attribute)
    if attribute not in ("id", "hostname", "role") and not attribute.startswith("labels."):
        raise StackError(f"placement constraint {constraint!r}: node.{attribute} is not a node attribute "
                         "(use id, hostname, role or labels.<name>)")
    equal = value is not None and value == wanted
    return equal if op == "==" else not equal


def eligible(nodes: Sequence[Node], constraints: Sequence[str]) -> list[Node]:
    return [n for n in order(nodes) if n.ready and all(satisfies(n, c) for c in constraints)]


def _hard_constraints(placement: PlacementSpec, nodes: Sequence[Node]) -> list[str]:
    """The placement's constraints, plus ``node.role==worker`` when it avoids managers and a worker fits."""
    constraints = list(placement.constraints)
    if placement.avoid_managers and eligible(nodes, [*constraints, "node.role==worker"]):
        constraints.append("node.role==worker")  # the managers keep the control plane (and what is pinned there)
    return constraints


def replica_counts(spec: StackSpec, nodes: Sequence[Node]) -> dict[str, int]:
    """Replica counts that ``per_node`` sets (service -> per_node x its eligible nodes)."""
    counts: dict[str, int] = {}
    for name, svc in spec.services.items():
        placement = svc.placement
        if placement is not None and placement.per_node:
            fit = eligible(nodes, _hard_constraints(placement, nodes))
            if not fit:
                raise StackError(f"service {name}: no ready node satisfies {', '.join(placement.constraints) or 'its placement'}")
            counts[name] = placement.per_node * len(fit)
    return counts


@dataclass(frozen=True)
class Where:
    """Where one instance goes: its swarm constraints and, for a reschedulable one, its slot's nodes."""

    constraints: list[str]
    home: str = ""  # node id of its first node (spread and per_node)
    spares: tuple[str, ...] = ()  # reschedulable: node ids that get its slot once it is placed

    @property
    def reschedulable(self) -> bool:
        return bool(self.home) and not any(c.startswith("node.id==") for c in self.constraints)


def place(service: str, placement: PlacementSpec | None, replica: int, nodes: Sequence[Node],
          slot: str | None = None) -> Where:
    """Where instance ``replica`` (1-based) of ``service`` goes.

    ``slot`` is the constraint of the instance's own node label; without it
    (or without ``reschedule``) a spread instance is pinned by node id.
    """
    if placement is None:
        return Where([])
    constraints = _hard_constraints(placement, nodes)
    if not (placement.spread or placement.per_node):
        return Where(constraints)
    fit = eligible(nodes, constraints)
    if not fit:
        raise StackError(f"service {service}: no ready node satisfies {', '.join(constraints) or 'its placement'}")
    home = fit[(replica - 1) % len(fit)]
    if slot and placement.spread and placement.reschedule and not placement.per_node:
        return Where([*constraints, slot], home.id, tuple(n.id for n in fit if n.id != home.id))
    return Where([*constraints, f"node.id=={home.id}"], home.id)


def constraints_for(service: str, placement: PlacementSpec | None, replica: int, nodes: Sequence[Node]) -> list[str]:
    """The swarm constraints of instance ``replica`` (1-based) of ``service``, pinned by node id."""
    return place(service, placement, replica, nodes).constraints


def edit_node(client: "docker.DockerClient", node_id: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None],
              doing: str, gone_ok: bool = False, tries: int = 20) -> None:
    """Read-modify-write a node's spec with the version read, again when another writer moved it meanwhile
    (a heartbeat, a status change, a parallel launch). ``edit`` returns the new spec, or None: nothing to change.
    ``gone_ok``: a node that left the swarm is no error."""
    import docker

    last: Exception | None = None
    for _ in range(tries):
        try:
            node = client.nodes.get(node_id)
            spec = edit(dict(node.attrs["Spec"]))
            if spec is not None:
                node.update(spec)  # refused if the node's version moved since the read
            return
        except docker.errors.NotFound:
            if gone_ok:
                return
            raise StackError(f"{doing}: node {node_id[:12]} is not in the swarm") from None
        except docker.errors.APIError as err:
            if "out of sequence" not in str(err):
                raise StackError(f"{doing}: {getattr(err, 'explanation', None) or err}") from None
            last = err
            time.sleep(0.05)
    raise StackError(f"{doing}: node {node_id[:12]} kept changing under us ({last})")
