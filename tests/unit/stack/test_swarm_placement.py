"""The stack file's placement made concrete on swarm nodes: constraints, spread, one per node."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.stack.errors import StackError, StackFileError
from chaos.stack.spec import PlacementSpec, load_stack, loads_stack
from chaos.stack import swarm_placement as sp

STACK = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"


def node(i: int, ready: bool = True, role: str = "worker", **labels: str) -> sp.Node:
    return sp.Node(id=f"id{i}", hostname=f"host{i}", role=role, labels={sp.NODE_LABEL: str(i), **labels}, ready=ready)


NODES = [node(3, zone="b"), node(1, role="manager", zone="a"), node(2, zone="a"), node(4, ready=False, zone="a")]


def test_node_from_the_engines_attributes():
    found = sp.Node.from_attrs({"ID": "x", "Description": {"Hostname": "h"}, "Spec": {"Role": "manager", "Availability": "drain",
                                "Labels": {"zone": "a"}}, "Status": {"State": "ready", "Addr": "10.0.0.2"}})
    assert (found.hostname, found.role, found.labels, found.address, found.ready) == ("h", "manager", {"zone": "a"}, "10.0.0.2", False)


@pytest.mark.parametrize("constraint, ids", [
    ("node.labels.zone==a", ["id1", "id2"]),
    ("node.labels.zone!=a", ["id3"]),
    ("node.labels.rack==1", []),
    ("node.labels.rack!=1", ["id1", "id2", "id3"]),  # a missing label is never equal
    ("node.role==manager", ["id1"]),
    ("node.hostname != host2", ["id1", "id3"]),
    ("node.id==id3", ["id3"]),
])
def test_constraints_follow_swarms_semantics_over_ready_nodes_in_index_order(constraint, ids):
    assert [n.id for n in sp.eligible(NODES, [constraint])] == ids


def test_a_constraint_on_no_attribute_is_one_clear_error():
    with pytest.raises(StackError, match="node.platform is not a node attribute"):
        sp.eligible(NODES, ["node.platform==linux"])


def test_spread_pins_instances_round_robin_and_none_leaves_the_scheduler_free():
    spread = PlacementSpec(spread=True, constraints=["node.labels.zone==a"])
    assert [sp.constraints_for("edge", spread, r, NODES)[-1] for r in (1, 2, 3)] == ["node.id==id1", "node.id==id2", "node.id==id1"]
    assert sp.constraints_for("edge", None, 1, NODES) == []
    assert sp.constraints_for("edge", PlacementSpec(constraints=["node.role==worker"]), 2, NODES) == ["node.role==worker"]
    with pytest.raises(StackError, match="no ready node satisfies"):
        sp.constraints_for("edge", PlacementSpec(spread=True, constraints=["node.labels.zone==c"]), 1, NODES)


def test_per_node_sets_the_replica_count_from_the_eligible_nodes():
    spec = load_stack(STACK).spec  # the reference stack: one crowd on every node
    assert spec.services["crowd"].placement == PlacementSpec(per_node=1)
    assert sp.replica_counts(spec, NODES) == {"crowd": 3}
    assert sp.replica_counts(spec, NODES[:1]) == {"crowd": 1}


def test_placement_is_checked_when_the_stack_file_is_read():
    text = STACK.read_text().replace("placement: {per_node: 1}", 'placement: {spread: true, constraints: ["zone=a"]}')
    with pytest.raises(StackFileError, match=r"stack.yaml:\d+:\d+: services.crowd.placement.constraints.0"):
        loads_stack(text)
    text = STACK.read_text().replace("placement: {per_node: 1}", "placement: {per_node: 0}")
    with pytest.raises(StackFileError, match="services.crowd.placement.per_node"):
        loads_stack(text)


def test_an_instance_with_kept_data_is_pinned_to_its_node():
    from chaos.stack.swarm import SwarmBackend

    spec = load_stack(STACK).spec
    assert spec.services["state"].volume  # the reference stack keeps the state store's file
    assert SwarmBackend._placement(spec, "state") == PlacementSpec(spread=True, reschedule=False)
    assert SwarmBackend._placement(spec, "edge") == PlacementSpec(avoid_managers=True, spread=True)
    assert SwarmBackend._placement(spec, "control") == PlacementSpec(constraints=["node.role==manager"])
    assert SwarmBackend._placement(spec, "crowd") == PlacementSpec(per_node=1)


def test_avoid_managers_keeps_a_service_on_workers_only_while_there_is_a_worker_to_run_it():
    manager, worker = node(1, role="manager"), node(2)
    placement = PlacementSpec(avoid_managers=True)
    assert sp.constraints_for("edge", placement, 1, [manager, worker]) == ["node.role==worker"]
    assert sp.constraints_for("edge", placement, 1, [manager]) == []  # a one-node swarm still runs it
    assert sp.constraints_for("edge", placement, 1, [manager, node(2, ready=False)]) == []
    spread = PlacementSpec(avoid_managers=True, spread=True)
    assert sp.constraints_for("edge", spread, 2, [manager, worker, node(3)]) == ["node.role==worker", "node.id==id3"]


def test_a_reschedulable_spread_instance_is_placed_by_its_slot_on_its_first_node_then_on_the_others():
    spread = PlacementSpec(spread=True, avoid_managers=True)
    nodes = [node(1, role="manager"), node(2), node(3)]
    first = sp.place("edge", spread, 1, nodes, slot="node.labels.io.roomquake.slot.r.edge-1==me")
    assert first.constraints == ["node.role==worker", "node.labels.io.roomquake.slot.r.edge-1==me"]
    assert (first.home, first.spares, first.reschedulable) == ("id2", ("id3",), True)
    assert sp.place("edge", spread, 2, nodes, slot="s").home == "id3"
    # without a slot, or with reschedule: false, the instance is pinned to its first node for good
    assert sp.place("edge", spread, 2, nodes).constraints[-1] == "node.id==id3"
    pinned = sp.place("edge", spread.model_copy(update={"reschedule": False}), 1, nodes, slot="s")
    assert (pinned.constraints[-1], pinned.reschedulable) == ("node.id==id2", False)
    # one crowd on every node stays on its node: per_node is never rescheduled
    assert sp.place("crowd", PlacementSpec(per_node=1), 3, nodes, slot="s").constraints == ["node.id==id3"]
    assert not sp.place("edge", None, 1, nodes, slot="s").reschedulable


def test_a_slots_label_names_its_run_and_owner():
    from chaos.labels import RunIdentity, owner_alive
    from chaos.stack import swarm_slots as slots
    from chaos.stack.docker import owner_identity

    me = RunIdentity(run_id="20261201-200000-abcdef")
    key = slots.key(me.run_id, "edge-2")
    assert slots.run_of(key) == (me.run_id, "edge-2") and slots.run_of("zone") is None
    assert slots.constraint(me.run_id, "edge-2", "x") == f"node.labels.{key}==x"
    assert sp.satisfies(sp.Node(id="n", hostname="h", role="worker", labels={key: "x"}), slots.constraint(me.run_id, "edge-2", "x"))
    mine = slots.owner_labels(me.run_id, slots.owner_value(me))
    assert owner_alive(mine)  # this process made it
    gone = slots.owner_labels(me.run_id, slots.owner_value(RunIdentity(run_id=me.run_id, pid=2 ** 22 + 7)))
    assert not owner_alive(gone)
    kept = slots.owner_value(owner_identity(me, keep=True))
    assert kept == "keep" and owner_alive(slots.owner_labels(me.run_id, kept))
