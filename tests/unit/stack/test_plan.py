"""Planning: instances, ports, one proxy per link and server instance, RQ_ROUTES, start order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.stack.errors import StackFileError
from chaos.stack.plan import Plan, docker_addressing, local_addressing, make_plan, ports_needed
from chaos.stack.ports import free_ports
from chaos.stack.spec import apply_scale, load_stack, loads_stack

REFERENCE = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"


@pytest.fixture(scope="module")
def spec():
    return load_stack(REFERENCE).spec


def test_docker_plan_routes_every_link_through_a_proxy_per_server_instance(spec):
    plan = make_plan(spec, "ci", docker_addressing("proxy-1", 20000))
    names = [i.name for i in plan.instances]
    assert names.count("proxy-1") == 1 and "edge-3" in names and "supervisor-4" in names and "host-2" in names
    crowd_edge = [p for p in plan.proxies if p.link == "crowd->edge"]
    assert [p.name for p in crowd_edge] == ["crowd->edge-1", "crowd->edge-2", "crowd->edge-3"]
    assert crowd_edge[1].upstream == "edge-2:8765"
    listens = [p.listen for p in plan.proxies]
    assert len(set(listens)) == len(listens)
    crowd = plan.instance("crowd-1")
    routes = json.loads(crowd.env["RQ_ROUTES"])
    # every route is a proxy listener, never the server itself
    assert set(routes) == {"control", "control-1", "edge-1", "edge-2", "edge-3"}
    assert all(r.startswith("proxy-1:") for r in routes.values())
    assert routes["edge-2"] == crowd_edge[1].route
    assert "edge" not in routes  # multi-replica services have no alias
    assert crowd.env["RQ_SERVICE"] == "crowd" and crowd.env["RQ_INSTANCE"] == "crowd-1"
    assert crowd.env["RQ_BIND"] == "0.0.0.0" and crowd.env["RQ_PORT"] == "8060"
    assert crowd.env["HEARTBEAT_INTERVAL"] == "200ms"  # the ci profile
    assert plan.instance("host-2").env["HOST_ACCOUNT"] == "account-2"
    state = plan.instance("state-1")
    assert state.command[:2] == ["sh", "-c"] and "exec redis-server" in state.command[2]
    assert '--dir "/data"' in state.command[2] and state.env["STATE_PASSWORD"] == ""  # no secret given: none
    secret = make_plan(spec, "ci", docker_addressing("proxy-1", 20000), secret="s3")
    assert {i.env.get("STATE_PASSWORD") for i in secret.instances if i.service in ("state", "control", "edge", "supervisor")} == {"s3"}
    assert json.loads(plan.instance("state-1").env["RQ_ROUTES"]) == {}


def test_start_order_is_proxy_then_servers_before_clients(spec):
    plan = make_plan(spec, None, docker_addressing("proxy-1", 20000))
    assert plan.tiers[0] == ["proxy"]
    position = {s: n for n, tier in enumerate(plan.tiers) for s in tier}
    for client, server in spec.link_pairs():
        assert position[server] < position[client]


def test_local_plan_gives_every_instance_and_listener_its_own_loopback_port(spec):
    scaled = apply_scale(spec, {"edge": 2, "supervisor": 1})
    ports = free_ports(ports_needed(scaled))
    plan = make_plan(scaled, "gameday", local_addressing(ports))
    used = [i.port for i in plan.instances] + [int(p.listen.rsplit(":", 1)[1]) for p in plan.proxies]
    assert sorted(used) == sorted(ports)
    assert all(i.bind == "127.0.0.1" for i in plan.instances)
    edge2 = plan.instance("edge-2")
    assert [p.upstream for p in plan.proxies if p.server == "edge-2"][0] == f"127.0.0.1:{edge2.port}"
    assert plan.instance("crowd-1").env["HEARTBEAT_INTERVAL"] == "1s"
    assert plan.profile == "gameday"
    assert len([i for i in plan.instances if i.service == "edge"]) == 2


def test_plan_round_trips_through_json(spec):
    plan = make_plan(spec, "ci", docker_addressing("proxy-1", 20000))
    again = Plan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan


def test_link_cycle_is_refused():
    text = """
name: loop
images: {i: {tag: "x:1"}}
services:
  proxy: {image: i, command: [p], port: 1}
  a: {image: i, command: [a], port: 2}
  b: {image: i, command: [b], port: 3}
links: [a->b, b->a]
"""
    spec = loads_stack(text).spec
    with pytest.raises(StackFileError, match="cycle"):
        make_plan(spec, None, docker_addressing("proxy-1", 20000))
