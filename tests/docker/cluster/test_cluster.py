"""The local cluster on the real thing: a killed ``cluster up`` cleaned, a service across nodes over the overlay, down leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from chaos.cluster import load
from chaos.cluster.daemon import NodePaths

KILLED = "rqk"
NAME = os.environ.get("ROOMQUAKE_TEST_CLUSTER", "rqt")  # the session's cluster (conftest.py)


def test_a_killed_cluster_up_is_removed_by_clean(root_only, docker_engine, cluster_state, tools):
    """SIGKILL ``cluster up`` once its engines run; ``roomquake clean`` removes every namespace, link, rule, process and folder."""
    leftovers, roomquake, until = tools.leftovers, tools.roomquake, tools.until
    assert not leftovers(KILLED)
    up = subprocess.Popen([sys.executable, "-m", "chaos", "cluster", "up", "--nodes", "2", "--name", KILLED, "--no-images"],
                          cwd=tools.ROOT, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record_file = cluster_state / "clusters" / f"{KILLED}.json"

    def engines_started() -> bool:
        try:
            made = json.loads(record_file.read_text())["made"]
        except (OSError, ValueError, KeyError):
            return False
        return sum(1 for e in made if e["kind"] == "dockerd" and e.get("pid")) == 2

    try:
        until(engines_started, 120, "both engines of the cluster started")
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    left = leftovers(KILLED)
    assert any(x.startswith("netns") for x in left) and any(x.startswith("process") for x in left), left
    done = roomquake("clean")
    assert f"cluster {KILLED}: removed" in done.stdout
    assert leftovers(KILLED) == []
    assert not record_file.exists()


def test_status_names_every_node(local_cluster, tools):
    roomquake = tools.roomquake
    done = roomquake("cluster", "status", "--name", NAME)
    assert "up" in done.stdout and "manager" in done.stdout
    env = roomquake("cluster", "env", "--name", NAME).stdout.strip()
    assert env == f"export DOCKER_HOST=unix:///run/rqc/{NAME}/n1/docker.sock"


def test_a_service_spread_over_the_nodes_answers_over_the_overlay(local_cluster, tools):
    """A global service (one task per node) answers from a container on node 1 for every node, over VXLAN."""
    import docker

    record = load(NAME)
    manager = docker.DockerClient(base_url=record.manager_socket, timeout=60)
    node1 = docker.DockerClient(base_url=NodePaths(NAME, 1).url, timeout=60)
    image = record.data["images"][0]
    labels = {"io.roomquake.run": "cluster-test"}
    net = manager.networks.create("rqt-overlay", driver="overlay", attachable=True, labels=labels)
    service = None
    try:
        service = manager.services.create(
            image, command=["sh", "-c", "mkdir -p /srv && hostname > /srv/index.html && exec python3 -m http.server -d /srv 8000"],
            name="rqt-who", hostname="{{.Node.Hostname}}", mode=docker.types.ServiceMode("global"),
            networks=[net.id], endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"), labels=labels,
        )
        ask = textwrap.dedent("""
            import socket, time, urllib.request
            seen = set()
            deadline = time.time() + 90
            while time.time() < deadline and len(seen) < 2:
                try:
                    ips = {a[4][0] for a in socket.getaddrinfo("tasks.rqt-who", 8000)}
                    seen = {urllib.request.urlopen(f"http://{ip}:8000/", timeout=3).read().decode().strip() for ip in ips}
                except OSError:
                    pass
                time.sleep(0.5)
            print(" ".join(sorted(seen)))
        """)
        out = node1.containers.run(image, ["python3", "-c", ask], network="rqt-overlay", remove=True, labels=labels)
        assert out.decode().split() == [f"rq-{NAME}-n1", f"rq-{NAME}-n2"]
    finally:
        if service is not None:
            service.remove()
        tools.until(lambda: _removed(manager, net.id), 60, "overlay network removed")
        manager.close()
        node1.close()


def _removed(manager, net_id: str) -> bool:
    import docker

    try:
        manager.api.remove_network(net_id)
    except docker.errors.NotFound:
        return True
    except docker.errors.APIError:
        return False
    return True


def test_nothing_is_published_beyond_the_bridge(local_cluster):
    """The bridge's subnet is private, no NAT leads in or out, and FORWARD drops anything crossing the bridge's edge."""
    import ipaddress
    import subprocess as sp

    record = load(NAME)
    subnet = ipaddress.IPv4Network(record.data["subnet"])
    assert subnet.is_private
    nat = sp.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    assert record.data["bridge"] not in nat and str(subnet) not in nat
    rules = sp.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    bridge = record.data["bridge"]
    assert f"-i {bridge} ! -o {bridge}" in rules and f"! -i {bridge} -o {bridge}" in rules


@pytest.mark.parametrize("nodes", [0, 10])
def test_node_count_is_checked_before_anything_is_made(root_only, cluster_state, tools, nodes):
    leftovers, roomquake = tools.leftovers, tools.roomquake
    done = roomquake("cluster", "up", "--nodes", str(nodes), "--name", "rqx", check=False)
    assert done.returncode == 2 and "--nodes" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert leftovers("rqx") == []
