"""Node faults on a local cluster: a node lost (its engine and everything it ran killed at once), or cut off (its link down).

``lose`` is a power cut, not a shutdown: the node's dockerd, containerd,
shims and every container process are SIGKILLed together (the processes
naming the node's folders and all below them), so nothing is handed over
and the swarm learns of it only from missed heartbeats. ``revive`` starts
the node's engine again from the same folders; it rejoins the swarm by
itself (its swarm state is in its data root) and the record names the new
process, so ``cluster down`` ends it. ``cut``/``mend`` take the host end of
the node's veth down and up: the node's own link keeps its address and
routes, as a node whose switch port died would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from chaos.cluster import daemon, network
from chaos.cluster.daemon import NodePaths
from chaos.cluster.record import UP, ClusterRecord, load, records
from chaos.cluster.system import ClusterError, alive, kill_tree, processes_mentioning, require_root, run

ENGINE_TIMEOUT_S = 120.0
GONE_WAIT_S = 30.0


@dataclass(frozen=True)
class ClusterNode:
    """A swarm node that is one of a local cluster's nodes."""

    cluster: str
    index: int
    node_id: str
    hostname: str

    @property
    def paths(self) -> NodePaths:
        return NodePaths(self.cluster, self.index)


def find(node_id: str) -> ClusterNode | None:
    """The local cluster node with swarm node id ``node_id`` (None: not a node of a cluster that is up here)."""
    for record in records():
        if record.state != UP:
            continue
        for node in record.nodes:
            if node.get("node_id") == node_id:
                return ClusterNode(record.name, int(node["index"]), node_id, str(node.get("hostname", "")))
    return None


def _engine_entry(record: ClusterRecord, index: int) -> dict[str, Any]:
    for entry in record.data.get("made", []):
        if entry.get("kind") == "dockerd" and int(entry.get("node", 0)) == index:
            return dict(entry)
    raise ClusterError(f"cluster {record.name}: no engine of node {index} in its record")


def engine_alive(node: ClusterNode) -> bool:
    entry = _engine_entry(load(node.cluster), node.index)
    return bool(entry.get("pid")) and alive(int(entry["pid"]), str(entry.get("start", "")))


def _processes(node: ClusterNode) -> list[int]:
    return [p for root in (node.paths.run_dir, node.paths.data_dir) for p in processes_mentioning(str(root) + "/")]


def lose(node: ClusterNode) -> int:
    """Kill the node's engine and everything it runs at once; returns how many processes were killed.

    Returns once the engine is gone (SIGKILL is delivered, not awaited: a
    many-threaded dockerd takes a moment to exit).
    """
    require_root()
    killed = kill_tree(_processes(node))
    deadline = time.monotonic() + GONE_WAIT_S
    while engine_alive(node) or _processes(node):
        if time.monotonic() > deadline:
            raise ClusterError(f"node {node.index} of cluster {node.cluster}: its engine still runs {GONE_WAIT_S:g}s after SIGKILL")
        kill_tree(_processes(node))
        time.sleep(0.1)
    return killed


def revive(node: ClusterNode) -> None:
    """Start the node's engine again (nothing to do while it runs) and wait until it answers."""
    require_root()
    record = load(node.cluster)
    entry = _engine_entry(record, node.index)
    if entry.get("pid") and alive(int(entry["pid"]), str(entry.get("start", ""))):
        return
    kill_tree(_processes(node))
    node.paths.socket.unlink(missing_ok=True)  # a killed engine leaves its socket and pid file: a new one refuses to start
    node.paths.pidfile.unlink(missing_ok=True)
    names = network.Names(node.cluster)
    pid, start = daemon.start(node.paths, names.netns(node.index), names.hostname(node.index))
    _record_engine(record, node.index, pid, start)
    daemon.wait_ready(node.paths, pid, start, ENGINE_TIMEOUT_S)


def _record_engine(record: ClusterRecord, index: int, pid: int, start: str) -> None:
    made = record.data.get("made", [])
    for entry in made:
        if entry.get("kind") == "dockerd" and int(entry.get("node", 0)) == index:
            entry.update(pid=pid, start=start)
    record.set(made=made)


def link(node: ClusterNode) -> str:
    return network.Names(node.cluster).veth_host(node.index)


def cut(node: ClusterNode) -> None:
    """The node's link to the bridge goes down: nothing reaches it, it reaches nothing."""
    require_root()
    run(["ip", "link", "set", link(node), "down"])


def mend(node: ClusterNode) -> None:
    require_root()
    if network.link_exists(link(node)):
        run(["ip", "link", "set", link(node), "up"])


def link_up(node: ClusterNode) -> bool:
    shown = run(["ip", "-o", "link", "show", link(node)], check=False).stdout
    flags = shown.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in shown else []
    return "UP" in flags
