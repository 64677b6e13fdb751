"""The swarm backend on a real 2-node local cluster: placement, reach, load split over nodes, instance faults, teardown, a killed bring-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from chaos import labels as L
from chaos.stack import start_stack
from chaos.stack.bringup import attach_record

STACK = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"
SCALE = {"edge": 2, "supervisor": 2, "host": 2}
LISTENERS = 20


def _swarm_resources(manager, run_id: str) -> list[str]:
    from chaos.stack.swarm_clean import run_resources

    return [f"{kind} {name}" for kind, _, name in run_resources(manager, run_id)]


@pytest.fixture(scope="module")
def stack(local_cluster):
    running = start_stack(STACK, backend="swarm", scale=SCALE, profile="ci")
    manager = running.backend.client
    try:
        yield running
    finally:
        running.down()
        assert _swarm_resources(manager, running.run_id) == []


def _metric(host: str, port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))


def test_every_instance_is_a_labelled_service_reached_on_its_node(stack, local_cluster):
    nodes = {n["address"] for n in local_cluster.nodes}
    instances = stack.instances()
    assert {i.state for i in instances} == {"running"}
    hosts = {stack.address(i.name)[0] for i in instances}
    assert hosts == nodes  # both nodes carry instances, reached on their bridge address
    service = stack.backend.client.services.get(stack.backend.services["edge-2"])
    labels = service.attrs["Spec"]["Labels"]
    assert labels[L.RUN] == stack.run_id and labels[L.INSTANCE] == "edge-2" and labels[L.OWNER_PID] == str(os.getpid())
    assert service.attrs["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"  # no routing mesh (no IPVS here)
    # a spread edge is placed by its own node label (its slot), so the swarm may move it when its node is lost
    [slot] = [c for c in service.attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"] if "slot" in c]
    key = f"io.roomquake.slot.{stack.run_id}.edge-2"
    assert slot.startswith(f"node.labels.{key}==")
    carriers = [n for n in stack.backend.client.nodes.list() if key in (n.attrs["Spec"].get("Labels") or {})]
    assert [n.id for n in carriers] == [stack.backend.node_of("edge-2")]  # one worker: no other node to move to
    assert f"node label {key} on " in " ".join(_swarm_resources(stack.backend.client, stack.run_id))


def test_one_crowd_per_node_shares_the_load_and_probes_sum_over_nodes(stack, tools):
    crowds = stack.instances("crowd")
    assert [c.name for c in crowds] == ["crowd-1", "crowd-2"]  # placement per_node: 1 on 2 nodes
    assert len({stack.address(c.name)[0] for c in crowds}) == 2
    stack.load("start", room="launch", listeners=LISTENERS, ramp_s=1)
    tools.until(lambda: (stack.probe("crowd.connected_ratio") or 0) >= 0.9, 60, "the crowd connected")
    assert stack.probe("crowd.target") == LISTENERS
    assert [_metric(*stack.address(c.name), "crowd_listeners_target") for c in crowds] == [LISTENERS / 2] * 2


def test_killing_the_hosting_edge_relaunches_the_room_on_the_other(stack, tools):
    tools.until(lambda: stack.probe("room.state") == "live", 60, "the room is live")
    victim = stack.select("hosting", room="launch")[0]
    stack.kill(victim)
    assert {i.name: i.state for i in stack.instances("edge")}[victim] == "exited"  # held down until start
    tools.until(lambda: stack.probe("room.edge") not in (None, victim) and stack.probe("room.state") == "live",
                30, "the room relaunched on the other edge")
    stack.start(victim)
    assert {i.name: i.state for i in stack.instances("edge")}[victim] == "running"
    tools.until(lambda: (stack.probe("crowd.connected_ratio") or 0) >= 0.9, 60, "listeners back")


def test_pause_resume_restart_and_squeeze_one_task(stack):
    stack.pause("supervisor-1")
    assert {i.name: i.state for i in stack.instances("supervisor")} == {"supervisor-1": "paused", "supervisor-2": "running"}
    other = attach_record(stack.run_id)  # another process's view: the record names the swarm and the node engines
    assert {i.name: i.state for i in other.instances("supervisor")}["supervisor-1"] == "paused"
    other.resume("supervisor-1")
    assert {i.name: i.state for i in stack.instances("supervisor")}["supervisor-1"] == "running"
    before = stack.backend._task("host-2")["ID"]
    stack.restart("host-2")
    assert stack.backend._task("host-2")["ID"] != before  # swarm's forced update: a new task
    stack.squeeze("crowd-2", cpus=0.5, memory_mb=256)
    stack.unsqueeze("crowd-2")
    assert {i.state for i in stack.instances()} == {"running"}


def test_disconnect_cuts_a_task_off_and_reconnect_brings_it_back_under_its_name(stack, tools):
    """Swarm's disconnect: every packet but loopback's dropped in the task's namespace; the task stays attached."""
    from chaos.faults import iptables
    from chaos.stack.netns import namespace

    victim = "supervisor-2"
    host, port = stack.address(victim)
    before = stack.backend._task(victim)["ID"]
    stack.disconnect(victim)
    try:
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2)  # the toolkit cannot reach it either
        ns = namespace(stack, victim)
        assert ns is not None and len(iptables.tagged(ns.pid, stack.backend._cut_tag(victim))) == 2
        assert {i.name: i.state for i in stack.instances("supervisor")}[victim] == "running"  # no crash, only silence
    finally:
        stack.reconnect(victim)
    tools.until(lambda: stack.healthy(victim), 30, "the supervisor answers again")
    assert stack.backend._task(victim)["ID"] == before  # the same task, its name and address kept
    assert iptables.tagged(namespace(stack, victim).pid, stack.backend._cut_tag(victim)) == []
    stack.reconnect(victim)  # again, or after a SIGKILLed runner: nothing left to remove, no error


def test_a_killed_bring_up_is_removed_by_clean(local_cluster, tools, cluster_state):
    """SIGKILL ``stack up --backend swarm`` once it created services; ``roomquake clean`` removes them and the record."""
    import docker

    up = subprocess.Popen([sys.executable, "-m", "chaos", "stack", "up", "--backend", "swarm", "--scale", "edge=1,supervisor=1,host=1"],
                          cwd=tools.ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    manager = docker.DockerClient(base_url=local_cluster.manager_socket, timeout=60)

    def pending_with_services() -> str | None:
        for path in cluster_state.glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            found = _swarm_resources(manager, str(record["run_id"]))
            # the network, 2 services and the edge's slot label (node labels are swept too)
            if record.get("pending") and record.get("owner", {}).get(L.OWNER_PID) == str(up.pid) \
                    and len(found) >= 4 and any(r.startswith("node label") for r in found):
                return str(record["run_id"])
        return None

    try:
        run_id = tools.until(pending_with_services, 300, "the bring-up created services")
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    try:
        assert _swarm_resources(manager, run_id)
        done = tools.roomquake("clean")
        assert run_id in done.stdout
        assert _swarm_resources(manager, run_id) == []
        assert not (cluster_state / f"{run_id}.json").exists()
    finally:
        manager.close()


HOLD = """\
title: kill the edge hosting the room and wait (a runner SIGKILLed mid-fault on swarm)
stack: {stack}
profile: ci
scale: {{edge: 2, supervisor: 1, host: 1}}
load: {{room: launch, listeners: 6, ramp: 1s}}
settle: 60s
steady_state:
  - {{id: room-live, probe: room.state, expect: live}}
method:
  - {{id: kill-edge, at: 500ms, fault: kill, target: {{service: edge, hosting: launch}}}}
  - wait: 300s
"""


def test_a_runner_killed_mid_fault_on_swarm_is_rolled_back_by_clean(local_cluster, tools, cluster_state, tmp_path):
    """The runner's ledger covers swarm: its held-down edge is started again by ``roomquake clean``."""
    tools.roomquake("stack", "up", "--backend", "swarm", "--scale", "edge=2,supervisor=1,host=1")
    run_id = max(cluster_state.glob("*.json"), key=lambda p: p.stat().st_mtime).stem
    experiment = tmp_path / "hold.yaml"
    experiment.write_text(HOLD.format(stack=STACK))
    try:
        runner = subprocess.Popen([sys.executable, "-m", "chaos", "run", "-q", "--attach", run_id,
                                   "--journal-dir", str(tmp_path), str(experiment)],
                                  cwd=tools.ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def killed_edge() -> str | None:
            # the undo is in the ledger before the kill acts (Part.ahead): the kill itself is waited for too
            for ledger in cluster_state.glob("runner-*.json"):
                try:
                    undo = json.loads(ledger.read_text()).get("undo", [])
                except (OSError, ValueError):
                    continue
                for step in undo:
                    if step[:2] == ["stack", "start_if_down"]:
                        states = {i.name: i.state for i in attach_record(run_id).instances("edge")}
                        return str(step[2]) if states.get(str(step[2])) == "exited" else None
            return None

        try:
            victim = tools.until(killed_edge, 240, "the runner killed the hosting edge")
        finally:
            runner.send_signal(signal.SIGKILL)
            runner.wait()
        assert {i.name: i.state for i in attach_record(run_id).instances("edge")}[victim] == "exited"
        done = tools.roomquake("clean")
        assert "undid 1 fault part(s)" in done.stdout
        assert {i.name: i.state for i in attach_record(run_id).instances("edge")}[victim] == "running"
        assert not list(cluster_state.glob("runner-*.json"))
    finally:
        tools.roomquake("stack", "down", run_id)
