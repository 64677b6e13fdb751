"""Node faults on a swarm: a node lost (its engine killed, or its link cut) and a node drained.

The step names its nodes by what runs there (``target:``, e.g. the edge
hosting the room: the node its task is on) or by name (``node:``: a swarm
node id, hostname, or a local cluster's node index). ``node_loss`` acts
on a local cluster's node (chaos.cluster.nodes): ``how: stop`` kills its
engine and everything on it at once, ``how: partition`` takes its link
down; undone by starting the engine again (it rejoins the swarm) or
bringing the link up, and the undo waits until the swarm sees the node
ready. A swarm manager is never lost: this toolkit drives the swarm through
it. ``node_drain`` is ``docker node update --availability drain`` on any
swarm (its tasks move to other nodes, where their placement allows), undone
by ``active``.

Scaling a service down is ``staff_reduction`` with ``removal: stop`` (each
instance is a swarm service of its own, scaled to 0 and back), and killing
or pausing one task is ``kill``/``pause``: both work on swarm as they are.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import Field, model_validator

from chaos.errors import UsageError
from chaos.faults.base import Fault, FaultContext, Part, PathKey, StackFacts, Undo, register
from chaos.faults.model import FaultBase, Target

if TYPE_CHECKING:
    from chaos.stack.swarm import SwarmBackend
from chaos.faults.targets import check_target, resolve
from chaos.faults.undo import undo_op
from chaos.stack.errors import StackError

SWARM = frozenset({"swarm"})
READY_WAIT_S = 120.0  # a revived engine rejoining and reported ready by the manager, on a loaded machine


class NodeFault(FaultBase):
    """A fault on swarm nodes: those running the ``target`` instances, or the one named by ``node``."""

    target: Target | None = Field(None, description="the nodes running these instances, e.g. {service: edge, hosting: launch}")
    node: str | None = Field(None, description="a node by swarm id, hostname or local cluster index (2)")

    @model_validator(mode="after")
    def _one_way(self) -> NodeFault:
        if (self.target is None) == (self.node is None):
            raise ValueError("name the nodes by target (what runs there) or by node, one of the two")
        return self


class NodeLossFault(NodeFault):
    fault: Literal["node_loss"]
    how: Literal["stop", "partition"] = Field(
        "stop", description="stop: its engine and all it runs killed at once; partition: its link to the others down")


class NodeDrainFault(NodeFault):
    fault: Literal["node_drain"]


N = TypeVar("N", bound=NodeFault)


def swarm_backend(ctx: FaultContext) -> SwarmBackend:
    """The swarm the run's stack runs on (node faults are checked as swarm-only before a run starts)."""
    from chaos.stack.running import RunningStack
    from chaos.stack.swarm import SwarmBackend

    backend = ctx.stack.backend if isinstance(ctx.stack, RunningStack) else None
    if not isinstance(backend, SwarmBackend):
        raise UsageError(f"node faults need a swarm; this stack runs on {ctx.stack.backend_kind}")
    return backend


def _swarm_nodes(ctx: FaultContext) -> list[Any]:
    return list(swarm_backend(ctx).nodes())


def resolve_nodes(step: NodeFault, ctx: FaultContext) -> list[Any]:
    """The swarm nodes (chaos.stack.swarm_placement.Node) the step hits, in a stable order."""
    from chaos.stack.swarm_placement import NODE_LABEL, order

    nodes = _swarm_nodes(ctx)
    if step.node is not None:
        found = [n for n in nodes if step.node in (n.id, n.hostname, n.labels.get(NODE_LABEL))]
        if not found:
            known = ", ".join(f"{n.hostname} ({n.labels.get(NODE_LABEL) or n.id[:12]})" for n in order(nodes))
            raise UsageError(f"node {step.node!r} is not a node of this swarm (nodes: {known})")
        return found[:1]
    assert step.target is not None
    wanted: set[str] = set()
    for instance in resolve(step.target, ctx.stack, ctx.rng):
        node_id = swarm_backend(ctx).node_of(instance)
        if node_id is None:
            raise UsageError(f"{instance} has no task on any node: no node to hit")
        wanted.add(node_id)
    return [n for n in order(nodes) if n.id in wanted]


class OnNodes(Fault[N]):
    backends = SWARM
    needs = "a swarm"

    def check(self, step: N, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        if step.target is not None:
            yield from ((("target", *path), message) for path, message in check_target(step.target, stack))


class NodeLoss(OnNodes[NodeLossFault]):
    def prepare(self, step: NodeLossFault, step_id: str, ctx: FaultContext) -> list[Part]:
        from chaos.cluster import nodes as local

        parts = []
        for node in resolve_nodes(step, ctx):
            if node.role == "manager":
                raise UsageError(f"node {node.hostname or node.id[:12]} is a swarm manager: the toolkit drives the swarm "
                                 "through it, so it is never lost (target instances on a worker)")
            found = local.find(node.id)
            if found is None:
                raise UsageError(f"node_loss acts on a local cluster's nodes (roomquake cluster); node "
                                 f"{node.hostname or node.id[:12]} is not one: stop or cut it by hand on a real swarm")
            parts.append(self._part(step, found))
        return parts

    @staticmethod
    def _part(step: NodeLossFault, node: Any) -> Part:
        from chaos.cluster import nodes as local

        def do() -> Undo:
            if step.how == "stop":
                local.lose(node)
                return ("node", "revive", node.cluster, str(node.index))
            local.cut(node)
            return ("node", "mend", node.cluster, str(node.index))

        return Part(f"{node.hostname} ({step.how})", do)


class NodeDrain(OnNodes[NodeDrainFault]):
    def prepare(self, step: NodeDrainFault, step_id: str, ctx: FaultContext) -> list[Part]:
        def part(node: Any) -> Part:
            def do() -> Undo:
                set_availability(ctx, node.id, "drain")
                return ("node", "availability", node.id, "active")

            return Part(f"{node.hostname} (drain)", do)

        return [part(node) for node in resolve_nodes(step, ctx)]


def set_availability(ctx: FaultContext, node_id: str, availability: str) -> None:
    from chaos.stack.swarm_placement import edit_node

    def edit(spec: dict[str, Any]) -> dict[str, Any] | None:
        return None if spec.get("Availability") == availability else {**spec, "Availability": availability}

    edit_node(swarm_backend(ctx).client, node_id, edit, f"setting node {node_id[:12]} to {availability}")


def wait_ready(ctx: FaultContext, node_id: str, timeout: float = READY_WAIT_S) -> None:
    """Until the swarm's manager reports the node ready again."""
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        try:
            state = str(swarm_backend(ctx).client.nodes.get(node_id).attrs.get("Status", {}).get("State", "?"))
        except Exception as err:  # noqa: BLE001 - the manager may be busy; ask again
            state = str(err)
        if state == "ready":
            return
        time.sleep(0.5)
    raise StackError(f"node {node_id[:12]} is back but the swarm does not see it ready within {timeout:g}s (last: {state})")


def _cluster_node(cluster: str, index: str) -> Any:
    from chaos.cluster import load
    from chaos.cluster.nodes import ClusterNode

    node = load(cluster).node(int(index))
    return ClusterNode(cluster, int(index), str(node.get("node_id", "")), str(node.get("hostname", "")))


@undo_op("node", "revive", outlives_stack=True)
def _revive(ctx: FaultContext, cluster: str, index: str) -> None:
    from chaos.cluster import nodes as local

    node = _cluster_node(cluster, index)
    local.revive(node)
    wait_ready(ctx, node.node_id)


@undo_op("node", "mend", outlives_stack=True)
def _mend(ctx: FaultContext, cluster: str, index: str) -> None:
    from chaos.cluster import nodes as local

    node = _cluster_node(cluster, index)
    local.mend(node)
    wait_ready(ctx, node.node_id)


@undo_op("node", "availability", outlives_stack=True)
def _availability(ctx: FaultContext, node_id: str, availability: str) -> None:
    set_availability(ctx, node_id, availability)


register(NodeLossFault, NodeLoss())
register(NodeDrainFault, NodeDrain())
