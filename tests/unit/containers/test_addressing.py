"""Subnets and pinned addresses for run networks (no engine needed)."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from chaos.stack import containers
from chaos.stack.containers import SUBNET_POOL, RunNetwork, candidate_subnets
from chaos.errors import EngineError
from chaos.stack.ports import free_ports


def test_subnets_come_from_our_pool_and_start_where_the_run_id_says() -> None:
    first = next(candidate_subnets("run-a"))
    assert first.subnet_of(SUBNET_POOL) and first.prefixlen == 24
    assert next(candidate_subnets("run-a")) == first  # deterministic
    starts = {next(candidate_subnets(f"run-{i}")) for i in range(20)}
    assert len(starts) > 10  # parallel runs rarely try the same subnet first


def test_subnets_overlapping_host_routes_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = ipaddress.IPv4Network("10.213.0.0/17")  # half the pool is a real network here
    monkeypatch.setattr(containers, "_host_routes", lambda: [taken])
    offered = list(candidate_subnets("run-x"))
    assert offered and not any(subnet.overlaps(taken) for subnet in offered)
    assert len(offered) == 128


def test_host_routes_are_read_from_the_kernel() -> None:
    routes = containers._host_routes()
    assert all(isinstance(route, ipaddress.IPv4Network) for route in routes)
    assert ipaddress.IPv4Network("0.0.0.0/0") not in routes  # the default route is no conflict


def test_pinned_addresses_are_unique_across_threads_and_bounded() -> None:
    net = RunNetwork(network=SimpleNamespace(name="rq-test"), subnet=ipaddress.IPv4Network("10.213.7.0/24"))
    with ThreadPoolExecutor(8) as pool:
        ips = list(pool.map(lambda _: net.allocate_ip(), range(200)))
    assert len(set(ips)) == 200 and "10.213.7.1" not in ips  # never the gateway
    with pytest.raises(EngineError, match="no address left"):
        for _ in range(100):
            net.allocate_ip()


def test_no_pinning_without_our_subnet() -> None:
    with pytest.raises(EngineError, match="cannot pin"):
        RunNetwork(network=SimpleNamespace(name="rq-test"), subnet=None).allocate_ip()


def test_free_ports_are_distinct_loopback_ports_below_the_ephemeral_range() -> None:
    from chaos.stack.ports import LOWEST_PORT, _ephemeral_start

    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(1024 <= p <= 65535 for p in ports)
    # an outgoing connection never takes one between the draw and the bind (the kernel draws those above)
    assert all(LOWEST_PORT <= p < _ephemeral_start() for p in ports)
    assert free_ports(3) != ports  # drawn at random: concurrent runs do not walk the same order


def test_a_port_in_use_is_not_drawn_and_too_few_below_the_range_falls_back_to_the_kernel() -> None:
    import socket

    from chaos.stack import ports as plan

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    taken = held.getsockname()[1]
    try:
        original = plan.LOWEST_PORT, plan._ephemeral_start
        plan.LOWEST_PORT, plan._ephemeral_start = taken, lambda: taken + 1  # the one candidate is taken
        drawn = free_ports(2)  # so both come from the kernel, as bind(0) picks them
        assert taken not in drawn and len(set(drawn)) == 2
    finally:
        plan.LOWEST_PORT, plan._ephemeral_start = original
        held.close()
