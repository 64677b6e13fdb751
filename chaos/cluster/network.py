"""A cluster's network: one host-only bridge, one namespace per node, veth pairs, FORWARD rules.

Nothing here is reachable from outside the machine: the bridge carries a
private /24 that no route leads to from elsewhere, the host does no NAT for
it (no MASQUERADE: nodes cannot reach out either), and three FORWARD rules,
each tagged with the cluster's comment, let traffic pass between the nodes
through the bridge and drop anything forwarded into or out of it, whatever
the chain's policy. IPv6 is off on the bridge and on every node's link.
Engines in the node namespaces publish ports only inside those namespaces.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass

from chaos.cluster.system import ClusterError, run

POOL = ipaddress.IPv4Network("10.214.0.0/16")  # cut into /24s: one per cluster
OVERLAY_POOL = "10.215.0.0/16"  # the swarm's overlay subnets: never the bridge's
FIRST_NODE = 11  # node n gets .(10+n); the host end of the bridge is .1


@dataclass(frozen=True)
class Names:
    """Interface, namespace and rule names of cluster ``name`` (kept short: 15 bytes per interface)."""

    name: str

    @property
    def bridge(self) -> str:
        return f"rqb-{self.name}"

    @property
    def comment(self) -> str:
        return f"roomquake cluster {self.name}"

    def netns(self, index: int) -> str:
        return f"rq-{self.name}-n{index}"

    def veth_host(self, index: int) -> str:
        return f"rqv-{self.name}-{index}"

    def veth_node(self, index: int) -> str:
        return f"rqp-{self.name}-{index}"

    def hostname(self, index: int) -> str:
        return f"rq-{self.name}-n{index}"


def host_routes() -> list[ipaddress.IPv4Network]:
    """IPv4 destinations this host already routes (ours must not shadow any)."""
    done = run(["ip", "-j", "-4", "route", "show", "table", "all"], check=False)
    routes: list[ipaddress.IPv4Network] = []
    for entry in json.loads(done.stdout or "[]"):
        dst = entry.get("dst", "")
        if not dst or dst == "default":
            continue
        try:
            routes.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
        except ValueError:
            continue
    return routes


def choose_subnet(taken: Iterable[str]) -> ipaddress.IPv4Network:
    """The first /24 of the pool that no host route and no other cluster uses."""
    busy = host_routes() + [ipaddress.IPv4Network(t) for t in taken if t]
    for subnet in POOL.subnets(new_prefix=24):
        if not any(subnet.overlaps(other) for other in busy):
            return subnet
    raise ClusterError(f"no free /24 left in {POOL} for a cluster bridge")


def gateway(subnet: ipaddress.IPv4Network) -> str:
    return str(subnet.network_address + 1)


def node_address(subnet: ipaddress.IPv4Network, index: int) -> str:
    return str(subnet.network_address + FIRST_NODE - 1 + index)


def forward_rules(bridge: str, comment: str) -> list[list[str]]:
    """FORWARD rule specs (without the chain): between nodes yes, in or out of the bridge no."""
    tag = ["-m", "comment", "--comment", comment]
    return [
        ["-i", bridge, "-o", bridge, *tag, "-j", "ACCEPT"],
        ["-i", bridge, "!", "-o", bridge, *tag, "-j", "DROP"],
        ["!", "-i", bridge, "-o", bridge, *tag, "-j", "DROP"],
    ]


# --- make ---------------------------------------------------------------------------


def make_bridge(bridge: str, subnet: ipaddress.IPv4Network) -> None:
    run(["ip", "link", "add", bridge, "type", "bridge"])
    run(["sysctl", "-q", "-w", f"net.ipv6.conf.{bridge}.disable_ipv6=1"], check=False)
    run(["ip", "addr", "add", f"{gateway(subnet)}/{subnet.prefixlen}", "dev", bridge])
    run(["ip", "link", "set", bridge, "up"])


def add_rule(rule: list[str]) -> None:
    run(["iptables", "-w", "5", "-I", "FORWARD", "1", *rule])


def make_netns(netns: str) -> None:
    run(["ip", "netns", "add", netns])
    run(["ip", "-n", netns, "link", "set", "lo", "up"])


def make_veth(host_end: str, node_end: str, netns: str, bridge: str, address: str, subnet: ipaddress.IPv4Network) -> None:
    """A pair with one end on the bridge and the other inside ``netns`` as eth0, default route via the bridge."""
    run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end, "netns", netns])
    run(["sysctl", "-q", "-w", f"net.ipv6.conf.{host_end}.disable_ipv6=1"], check=False)
    run(["ip", "link", "set", host_end, "master", bridge, "up"])
    run(["ip", "-n", netns, "link", "set", node_end, "name", "eth0"])
    run(["nsenter", f"--net=/run/netns/{netns}", "sysctl", "-q", "-w", "net.ipv6.conf.eth0.disable_ipv6=1"], check=False)
    run(["ip", "-n", netns, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    run(["ip", "-n", netns, "route", "add", "default", "via", gateway(subnet)])


# --- remove (each tolerates a resource that never came to exist) ---------------------------


def link_exists(name: str) -> bool:
    return run(["ip", "link", "show", name], check=False).returncode == 0


def netns_exists(netns: str) -> bool:
    listed = run(["ip", "netns", "list"], check=False).stdout.split("\n")
    return any(line.split(" ")[0] == netns for line in listed)


def remove_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "del", name])


def remove_netns(netns: str) -> None:
    if netns_exists(netns):
        run(["ip", "netns", "del", netns])


def remove_rule(rule: list[str]) -> None:
    while run(["iptables", "-w", "5", "-C", "FORWARD", *rule], check=False).returncode == 0:
        run(["iptables", "-w", "5", "-D", "FORWARD", *rule])


def rules_tagged(comment: str) -> list[str]:
    """FORWARD rules carrying ``comment`` (what ``cluster status`` shows, and tests check are gone)."""
    listed = run(["iptables", "-w", "5", "-S", "FORWARD"], check=False).stdout.splitlines()
    return [line for line in listed if f'"{comment}"' in line or f"--comment {comment}" in line]
