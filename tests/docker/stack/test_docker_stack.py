"""The docker backend on a real engine: bring-up, isolation rules, faults, the relaunch path, teardown.

One stack serves the module (edge=2, supervisor=2: enough for a relaunch,
modest for a 2-core machine).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from roomquake_testutil import left_networks, until

from chaos import labels as L
from chaos.labels import RunIdentity
from chaos.stack import bring_up, registry, start_stack
from chaos.stack.errors import StackError
from chaos.stack.health import check, wait_all
from chaos.stack.spec import loads_stack

STACK = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"
SCALE = {"edge": 2, "supervisor": 2, "host": 2, "crowd": 1}
LISTENERS = 10


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    import os

    old = os.environ.get("ROOMQUAKE_STATE_DIR")
    os.environ["ROOMQUAKE_STATE_DIR"] = str(tmp_path_factory.mktemp("runs"))
    yield
    if old is None:
        os.environ.pop("ROOMQUAKE_STATE_DIR", None)
    else:
        os.environ["ROOMQUAKE_STATE_DIR"] = old


@pytest.fixture(scope="module")
def stack(docker_engine, stack_images, state_dir):
    with bring_up(STACK, backend="docker", scale=SCALE, profile="ci") as running:
        yield running


def ours(client, run_id):
    flt = {"label": f"{L.RUN}={run_id}"}
    return client.containers.list(all=True, filters=flt), client.networks.list(filters=flt)


def gone(client, run_id) -> bool:
    """Nothing of the run is left (a network the engine holds stuck, moby#42119, is not the run's doing)."""
    return ours(client, run_id)[0] == [] and left_networks(client, run_id) == []


def test_up_is_healthy_labeled_loopback_only_and_unprivileged(stack, docker_engine):
    assert all(i.state == "running" for i in stack.instances())
    containers, networks = ours(docker_engine, stack.run_id)
    assert len(containers) == len(stack.plan.instances) and len(networks) == 1
    for c in containers:
        assert c.labels[L.RUN] == stack.run_id and c.labels[L.INSTANCE] in {i.name for i in stack.plan.instances}
        host = c.attrs["HostConfig"]
        assert not host["Privileged"] and host["Init"]
        # Nothing published on the host: the toolkit reaches each container at its pinned address.
        assert not any((c.attrs["NetworkSettings"]["Ports"] or {}).values())
        assert not c.attrs["HostConfig"]["PortBindings"]
        assert list(c.attrs["NetworkSettings"]["Networks"]) == [networks[0].name]
    # image_ids names what the containers really run (sources may change during a session: not the fixture's)
    assert {c.attrs["Image"] for c in containers} == {stack.image_ids()["services"]}
    with stack.proxy_client() as client:
        assert set(client.proxies()) == {link.name for link in stack.links()}
    assert registry.load(stack.run_id)["backend"] == "docker"


def test_killing_the_hosting_edge_relaunches_the_room_and_listeners_follow(stack):
    room = "d-edge"
    stack.load("start", room=room, listeners=LISTENERS, ramp_s=0.5)
    until(lambda: stack.probe("room.state", room=room) == "live", 15, "room live")
    until(lambda: (stack.probe("crowd.room_listeners", room=room) or {}).get("1", 0) >= LISTENERS, 20, "listeners joined")
    [edge] = stack.select("hosting", room=room)
    stack.kill(edge)
    assert stack.instances("edge")[int(edge[-1]) - 1].state == "exited"
    moved = until(lambda: (e := stack.probe("room.edge", room=room)) not in (None, edge) and e, 15, "relaunch")
    assert moved != edge
    assert stack.probe("room.relaunch_reason", room=room) == "edge_lost"
    assert stack.probe("room.relaunch_time", room=room) > 0
    gen = stack.probe("room.generation", room=room)
    until(lambda: (stack.probe("crowd.room_listeners", room=room) or {}).get(str(gen), 0) >= 0.9 * LISTENERS, 20,
          "listeners on the new generation")
    assert until(lambda: stack.probe("crowd.room_fraction_back", room=room), 10, "fraction back") >= 0.9
    stack.start(edge)
    wait_all([(edge, stack.spec.services["edge"].health, lambda: stack.address(edge))])


def test_host_loss_moves_the_room_to_the_backup_account(stack):
    room = "d-host"
    stack.load("start", room=room, listeners=4, ramp_s=0.5)
    until(lambda: (stack.probe("crowd.room_listeners", room=room) or {}).get("1", 0) >= 4, 20, "listeners joined")
    stack.kill("host-1")
    until(lambda: stack.probe("room.host", room=room) == "account-2", 20, "relaunch under the backup account")
    assert stack.probe("room.relaunch_reason", room=room) == "host_lost"
    gen = stack.probe("room.generation", room=room)
    until(lambda: (stack.probe("crowd.room_listeners", room=room) or {}).get(str(gen), 0) >= 3, 20,
          "listeners following the backup host")
    stack.start("host-1")
    wait_all([("host-1", stack.spec.services["host"].health, lambda: stack.address("host-1"))])


def test_server_loss_operations_on_containers(stack, docker_engine):
    name = "edge-2"
    health = stack.spec.services["edge"].health
    address = stack.address(name)
    stack.pause(name)
    assert stack.instances("edge")[1].state == "paused"
    stack.resume(name)
    stack.stop(name)
    assert stack.instances("edge")[1].state == "exited"
    stack.start(name)
    assert stack.address(name) == address  # the same (pinned) address after a restart
    wait_all([(name, health, lambda: stack.address(name))])
    stack.disconnect(name)
    until(lambda: not check(health, *stack.address(name)), 5, "unreachable while disconnected")
    stack.reconnect(name)
    wait_all([(name, health, lambda: stack.address(name))])
    stack.squeeze(name, cpus=0.5, memory_mb=256)
    container = docker_engine.containers.get(f"rq-{stack.run_id}-{name}")
    assert container.attrs["HostConfig"]["CpuQuota"] == 50_000
    stack.unsqueeze(name)
    container.reload()
    assert container.attrs["HostConfig"]["CpuQuota"] in (0, -1)


def test_down_leaves_nothing_and_bad_input_starts_nothing(docker_engine, stack_images, state_dir):
    # as `stack up` does it: kept (roomquake clean leaves it), outliving its owner, until `stack down`
    small = start_stack(STACK, backend="docker", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 0}, keep=True)
    try:
        containers, networks = ours(docker_engine, small.run_id)
        assert len(containers) == 6 and len(networks) == 1
        assert all(c.labels.get(L.KEEP) == "1" for c in containers)
        assert networks[0].attrs["Labels"].get(L.KEEP) == "1"
    finally:
        small.down()
    assert gone(docker_engine, small.run_id)
    text = STACK.read_text().replace("  services:\n    build: services", "  services:\n    tag: roomquake/nosuch:0")
    bad = loads_stack(text, str(STACK))
    identity = RunIdentity()
    with pytest.raises(StackError, match="missing image 'roomquake/nosuch:0'"):
        start_stack(bad, backend="docker", identity=identity)
    assert gone(docker_engine, identity.run_id)
    assert identity.run_id not in [r["run_id"] for r in registry.records()]
