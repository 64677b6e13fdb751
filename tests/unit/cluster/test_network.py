"""Cluster network names, subnet choice and the FORWARD rules that keep the bridge to itself."""

from __future__ import annotations

import ipaddress

from chaos.cluster import network


def test_interface_names_fit_the_kernels_15_bytes():
    names = network.Names("abcdef")  # the longest name allowed
    for index in range(1, 10):
        assert len(names.veth_host(index)) <= 15 and len(names.veth_node(index)) <= 15
    assert len(names.bridge) <= 15


def test_subnet_avoids_host_routes_and_other_clusters(monkeypatch):
    monkeypatch.setattr(network, "host_routes", lambda: [ipaddress.IPv4Network("10.214.0.0/23")])
    subnet = network.choose_subnet(["10.214.2.0/24"])
    assert subnet == ipaddress.IPv4Network("10.214.3.0/24") and subnet.is_private
    assert network.gateway(subnet) == "10.214.3.1" and network.node_address(subnet, 2) == "10.214.3.12"


def test_overlays_never_share_the_bridge_pool():
    assert not ipaddress.IPv4Network(network.OVERLAY_POOL).overlaps(network.POOL)


def test_forward_rules_pass_between_nodes_and_drop_across_the_bridge_edge():
    rules = network.forward_rules("rqb-dev", "roomquake cluster dev")
    assert ["-i", "rqb-dev", "-o", "rqb-dev"] == rules[0][:4] and rules[0][-1] == "ACCEPT"
    assert ["-i", "rqb-dev", "!", "-o", "rqb-dev"] == rules[1][:5] and rules[1][-1] == "DROP"
    assert ["!", "-i", "rqb-dev", "-o", "rqb-dev"] == rules[2][:5] and rules[2][-1] == "DROP"
    assert all("roomquake cluster dev" in rule for rule in rules)  # tagged: removable and findable by comment
    assert not any("MASQUERADE" in rule or "nat" in rule for rule in rules)
