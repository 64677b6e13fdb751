"""Packet and node faults without an engine: their models, the backends that refuse them, the rules a partition makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.experiment.stackcheck import check_against_stack
from chaos.experiment.validate import validate_text
from chaos.faults import iptables
from chaos.faults.packet import cut_rules
from chaos.stack import load_stack
from chaos.stack.netns import Namespace, proxy_port

ROOT = Path(__file__).resolve().parents[3]
SPEC = load_stack(ROOT / "docker" / "stack.yaml").spec


def problems(body: str, backend: str | None = None) -> list[str]:
    experiment, found = validate_text("title: t\n" + body, "x.yaml")
    assert experiment is not None, [str(p) for p in found]
    return [f"{p.field}: {p.message}" for p in check_against_stack(experiment, SPEC, None, backend)]


def invalid(body: str) -> list[str]:
    experiment, found = validate_text("title: t\n" + body, "x.yaml")
    assert experiment is None
    return [f"{p.field}: {p.message}" for p in found]


PACKET = ("method:\n  - {fault: packet_loss, target: {service: edge}, probability: 0.2}\n"
          "  - {fault: partition, target: {instance: edge-1}, from: {service: state}}\n")
NODE = ("method:\n  - {fault: node_loss, target: {service: edge, hosting: launch}}\n"
        "  - {fault: node_drain, node: '2'}\n")


def test_packet_faults_run_on_both_container_backends_and_are_refused_for_processes() -> None:
    assert problems(PACKET, "docker") == problems(PACKET, "swarm") == []
    assert problems(PACKET, "local") == [
        "method[0].fault: packet_loss needs containers (a network namespace per instance): run with --backend docker or swarm",
        "method[1].fault: partition needs containers (a network namespace per instance): run with --backend docker or swarm",
    ]


def test_node_faults_are_for_a_swarm_only() -> None:
    assert problems(NODE, "swarm") == []
    for backend in ("docker", "local"):
        assert problems(NODE, backend) == [
            "method[0].fault: node_loss needs a swarm: run with --backend swarm",
            "method[1].fault: node_drain needs a swarm: run with --backend swarm",
        ]


def test_bad_packet_and_node_steps_are_one_line_each() -> None:
    assert any("probability" in line for line in invalid("method:\n  - {fault: packet_loss, target: {service: edge}, probability: 1.5}\n"))
    assert any("from" in line for line in invalid("method:\n  - {fault: partition, target: {service: edge}}\n"))
    assert any("target" in line and "node" in line
               for line in invalid("method:\n  - {fault: node_loss, node: '2', target: {service: edge}}\n"))
    assert any("how" in line for line in invalid("method:\n  - {fault: node_loss, node: '2', how: melt}\n"))
    assert problems("method:\n  - {fault: partition, target: {service: edg}, from: {service: stat}}\n", "docker") == [
        "method[0].target.service: no service 'edg' in stack audio-room; did you mean 'edge'?",
        "method[0].from.service: no service 'stat' in stack audio-room; did you mean 'state'?",
    ]


def test_a_partition_cuts_addresses_and_the_proxy_listeners_of_the_links_between_the_sides() -> None:
    state = Namespace("state-1", 10, ("10.0.0.5",))
    proxy = Namespace("proxy-1", 11, ("10.0.0.2",))
    links = [("edge", "state-1", 20001), ("control", "state-1", 20002), ("edge", "control-1", 20003)]
    assert cut_rules("edge-1", [state], proxy, links) == [
        ("INPUT", "-s", "10.0.0.5"), ("OUTPUT", "-d", "10.0.0.5"),
        ("OUTPUT", "-d", "10.0.0.2", "-p", "tcp", "--dport", "20001"),
        ("INPUT", "-s", "10.0.0.2", "-p", "tcp", "--sport", "20001"),
    ]
    assert proxy_port("0.0.0.0:20001") == 20001


def test_rule_tags_name_run_and_step_and_are_read_back_from_iptables_lines() -> None:
    assert iptables.tag("20261130-x", "cut edge") == "rq.20261130-x.cut_edge"
    line = '-A INPUT -s 10.0.0.5/32 -m comment --comment rq.r.cut -j DROP'
    assert iptables._comment_of(line) == "rq.r.cut"
    assert iptables._comment_of('-A INPUT -m comment --comment "two words" -j DROP') == "two words"
    assert iptables._comment_of("-A INPUT -j DROP") is None


def test_packet_faults_need_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iptables.os, "geteuid", lambda: 1000)
    with pytest.raises(Exception, match="run as root"):
        iptables.require()


def test_a_dead_runners_node_faults_are_undone_even_when_its_stack_is_taken_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lost node outlives the run's stack: the ledger revives it, then takes the stack down (packet rules go with their containers)."""
    import chaos.stack
    import chaos.stack.bringup
    from chaos.faults import undo as undo_module
    from chaos.labels import RunIdentity
    from chaos.run.ledger import Ledger, sweep_dead_runs

    done: list[str] = []
    monkeypatch.setitem(undo_module._OPS, ("node", "revive"), lambda ctx, cluster, index: done.append(f"revive {cluster} {index}"))
    monkeypatch.setattr(chaos.stack.bringup, "attach_record", lambda run: object())
    monkeypatch.setattr(chaos.stack, "down", lambda run: done.append(f"down {run}"))
    dead = RunIdentity(pid=2**22 + 7)
    ledger = Ledger(dead, tmp_path)
    ledger.stack("stack-1", "swarm", attached=False, proxy_url="")
    ledger.add(("netfilter", "remove", "edge-1", "rq.x.cut"))
    ledger.add(("node", "revive", "s23", "2"))
    lines = sweep_dead_runs(tmp_path)
    assert done == ["revive s23 2", "down stack-1"]
    assert lines == [f"{dead.run_id}: undid 1 fault part(s) on stack stack-1; {dead.run_id}: took down stack stack-1 it had brought up"]
