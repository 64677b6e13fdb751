"""``cluster up`` / ``down`` / ``status`` and the sweep ``roomquake clean`` runs.

Up makes, in order: the cluster's folders, the bridge, the FORWARD rules,
per node a namespace and a veth pair, per node an engine; then forms the
swarm and loads the stack's images into every node. Each resource is in the
record before it exists (chaos.cluster.record). Any failure or Ctrl-C while
coming up removes what was made; a SIGKILL leaves the record for ``cluster
down`` or ``roomquake clean``. Down removes the record's resources in
reverse order, engines first and side by side.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.cluster import daemon, formation, images, network
from chaos.cluster.daemon import DATA_ROOT, RUN_ROOT, NodePaths
from chaos.cluster.record import COMING_UP, GOING_DOWN, UP, ClusterRecord, load, new_record, records
from chaos.cluster.system import ClusterError, remove_tree, require_root, require_tools
from chaos.engine import id_of
from chaos.errors import UsageError
from chaos.labels import OWNER_PID, RunIdentity

Progress = Callable[[str], None]
MAX_NODES = 9
DEFAULT_NAME = "rq"


def _quiet(_: str) -> None:
    return None


# --- up ---------------------------------------------------------------------------------


def up(
    nodes: int, name: str = DEFAULT_NAME, *, progress: Progress = _quiet, engine_timeout: float = 120.0,
    load_images: bool = True, identity: RunIdentity | None = None,
) -> ClusterRecord:
    """Make a ``nodes``-node swarm on this machine; returns its record (state ``up``)."""
    require_root()
    require_tools()
    if not 1 <= nodes <= MAX_NODES:
        raise UsageError(f"--nodes {nodes}: a local cluster has 1 to {MAX_NODES} nodes")
    began = time.monotonic()
    record = new_record(name, identity or RunIdentity())
    try:
        _make(record, nodes, progress, engine_timeout, load_images)
    except BaseException:
        progress("failed: removing what was made")
        _remove_all(record, _quiet)
        raise
    record.set(state=UP, up_seconds=round(time.monotonic() - began, 2))
    return record


def _make(record: ClusterRecord, count: int, progress: Progress, engine_timeout: float, load_images: bool) -> None:
    name = record.name
    names = network.Names(name)
    taken = [r.data.get("subnet", "") for r in records() if r.name != name]
    subnet = network.choose_subnet(taken)
    paths = [NodePaths(name, i) for i in range(1, count + 1)]
    record.set(
        subnet=str(subnet), bridge=names.bridge, manager=paths[0].url,
        nodes=[
            {"index": p.index, "hostname": names.hostname(p.index), "address": network.node_address(subnet, p.index),
             "netns": names.netns(p.index), "socket": p.url}
            for p in paths
        ],
    )
    for parent in (RUN_ROOT, DATA_ROOT):
        if not parent.exists():  # shared by clusters: removed only when empty
            record.will_make("dir", path=str(parent), only_if_empty=True)
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for root in (RUN_ROOT / name, DATA_ROOT / name):
        record.will_make("dir", path=str(root))
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    progress(f"bridge {names.bridge} on {subnet} (host end {network.gateway(subnet)})")
    record.will_make("bridge", name=names.bridge)
    network.make_bridge(names.bridge, subnet)
    for rule in network.forward_rules(names.bridge, names.comment):
        record.will_make("rule", spec=rule)
        network.add_rule(rule)
    for p in paths:
        netns = names.netns(p.index)
        record.will_make("netns", name=netns)
        network.make_netns(netns)
        record.will_make("veth", name=names.veth_host(p.index))
        network.make_veth(names.veth_host(p.index), names.veth_node(p.index), netns, names.bridge,
                          network.node_address(subnet, p.index), subnet)
    progress(f"starting {count} engine(s)")
    started: list[tuple[NodePaths, int, str]] = []
    for p in paths:
        entry = record.will_make("dockerd", node=p.index, run_dir=str(p.run_dir), data_dir=str(p.data_dir))
        pid, start = daemon.start(p, names.netns(p.index), names.hostname(p.index))
        entry.update(pid=pid, start=start)
        record.save()
        started.append((p, pid, start))
    for p, pid, start in started:
        daemon.wait_ready(p, pid, start, engine_timeout)
    progress("forming the swarm")
    _form(record, paths, subnet)
    if load_images:
        _load_images(record, paths, progress)


def _form(record: ClusterRecord, paths: list[NodePaths], subnet: ipaddress.IPv4Network) -> None:
    manager_address = network.node_address(subnet, 1)
    with daemon.client(paths[0], timeout=60) as manager:
        token = formation.init(manager, manager_address)
        for p in paths[1:]:
            with daemon.client(p, timeout=60) as worker:
                formation.join(worker, p.index, network.node_address(subnet, p.index), manager_address, token)
        nodes = record.nodes
        for p, node in zip(paths, nodes):
            with daemon.client(p) as engine:
                node["node_id"] = formation.node_id(engine)
            node["role"] = "manager" if p.index == 1 else "worker"
            formation.label(manager, node["node_id"], record.name, p.index)
        record.set(nodes=nodes)


def stack_image_refs() -> list[str]:
    """What the reference stack runs (built on the host engine if missing, as the docker backend does)."""
    from chaos.images import ensure_images

    with images.host_engine() as host:
        return [ensure_images(host).services.ref]


def _load_images(record: ClusterRecord, paths: list[NodePaths], progress: Progress) -> None:
    refs = stack_image_refs()
    with images.host_engine() as host:
        seconds = images.distribute(host, refs, paths, DATA_ROOT / record.name, progress)
    record.set(images=refs, images_seconds=round(seconds, 2))


# --- down ----------------------------------------------------------------------------------


def down(name: str = DEFAULT_NAME, *, progress: Progress = _quiet, force: bool = False) -> float:
    """Remove everything the record of cluster ``name`` names; returns the seconds it took."""
    require_root()
    record = load(name)
    if record.state == COMING_UP and record.owner_alive and not force:
        raise ClusterError(
            f"cluster {name!r} is still coming up (pid {record.owner.get(OWNER_PID, '?')}): "
            "wait for it, or stop that process first"
        )
    began = time.monotonic()
    record.claim(RunIdentity(), GOING_DOWN)
    _remove_all(record, progress)
    return time.monotonic() - began


def _remove_entry(record: ClusterRecord, entry: dict[str, Any]) -> None:
    kind = entry["kind"]
    if kind == "dockerd":
        paths = NodePaths(record.name, int(entry["node"]))
        daemon.remove_containers(paths)
        daemon.stop(entry, paths)
    elif kind == "veth":
        network.remove_link(entry["name"])
    elif kind == "netns":
        network.remove_netns(entry["name"])
    elif kind == "rule":
        network.remove_rule(list(entry["spec"]))
    elif kind == "bridge":
        network.remove_link(entry["name"])
    elif kind == "dir":
        path = Path(entry["path"])
        if entry.get("only_if_empty"):
            if path.exists() and not any(path.iterdir()):
                path.rmdir()
        else:
            remove_tree(path)
    else:
        raise ClusterError(f"cluster {record.name}: unknown resource kind {kind!r} in its record")


def _remove_all(record: ClusterRecord, progress: Progress) -> None:
    """Engines first (side by side), then everything else newest first; the record goes when all is gone."""
    failures: list[str] = []
    engines = [e for e in record.made if e["kind"] == "dockerd"]
    if engines:
        progress(f"stopping {len(engines)} engine(s)")

        def stop(entry: dict[str, Any]) -> str | None:
            try:
                _remove_entry(record, entry)
                return None
            except Exception as err:  # noqa: BLE001 - one engine's trouble must not keep the others up
                return f"engine of node {entry['node']}: {err}"

        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(engines)) as pool:
            outcomes = list(pool.map(stop, engines))
        progress(f"engines stopped ({time.monotonic() - began:.1f}s)")
        for entry, problem in zip(engines, outcomes):
            if problem:
                failures.append(problem)
            else:
                record.forget(entry)
        if failures:  # an engine still running keeps its namespace and folders: all stay for a retry
            raise ClusterError(f"cluster {record.name}: {failures[0]} (run roomquake cluster down again)")
    for entry in reversed(record.made):
        try:
            began = time.monotonic()
            _remove_entry(record, entry)
            record.forget(entry)
            progress(f"removed {entry['kind']} {entry.get('name') or entry.get('path') or ''} ({time.monotonic() - began:.1f}s)")
        except Exception as err:  # noqa: BLE001 - try the rest, report the first
            failures.append(f"{entry['kind']} {entry.get('name') or entry.get('path') or ''}: {err}")
    if failures:
        raise ClusterError(f"cluster {record.name}: {len(failures)} resource(s) left; first: {failures[0]} "
                           "(run roomquake cluster down again)")
    record.delete()


# --- status and sweep ------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeStatus:
    index: int
    hostname: str
    address: str
    socket: str
    engine: str  # "answers" | "not answering"
    swarm: str  # ready | down | unknown | ...
    role: str
    availability: str
    containers: int


def node_statuses(record: ClusterRecord) -> list[NodeStatus]:
    import docker

    seen: dict[str, dict[str, Any]] = {}
    try:
        with daemon.client(NodePaths(record.name, 1), timeout=5) as manager:
            seen = {id_of(n): n.attrs for n in manager.nodes.list()}
    except docker.errors.DockerException:
        pass
    out = []
    for node in record.nodes:
        paths = NodePaths(record.name, node["index"])
        engine, containers = "not answering", 0
        try:
            with daemon.client(paths, timeout=5) as engine_client:
                containers = len(engine_client.api.containers())
                engine = "answers"
        except docker.errors.DockerException:
            pass
        attrs = seen.get(node.get("node_id", ""), {})
        out.append(NodeStatus(
            index=node["index"], hostname=node["hostname"], address=node["address"], socket=node["socket"],
            engine=engine, swarm=str(attrs.get("Status", {}).get("State", "unknown")),
            role=str(attrs.get("Spec", {}).get("Role", node.get("role", "?"))),
            availability=str(attrs.get("Spec", {}).get("Availability", "?")), containers=containers,
        ))
    return out


def sweep_dead_clusters(dry_run: bool = False) -> list[str]:
    """Remove clusters whose ``up`` or ``down`` was killed midway (owner dead, not up); a cluster that is up stays."""
    if os.geteuid() != 0:  # nothing of a cluster can be removed without root: say what is waiting
        return [f"cluster {r.name}: left by a killed run of pid {r.owner.get(OWNER_PID, '?')}; removing it needs root "
                "(sudo roomquake clean)" for r in records() if r.state != UP and not r.owner_alive]
    done = []
    for record in records():
        if record.state == UP or record.owner_alive:
            continue
        what = "coming up" if record.state == COMING_UP else "going down"
        pid = record.owner.get(OWNER_PID, "?")
        if dry_run:
            done.append(f"cluster {record.name}: would remove {len(record.made)} resource(s) left by pid {pid} ({what})")
            continue
        count = len(record.made)
        record.claim(RunIdentity(), GOING_DOWN)
        _remove_all(record, _quiet)
        done.append(f"cluster {record.name}: removed {count} resource(s) left by pid {pid} ({what})")
    return done


def live_manager(name: str | None = None) -> str | None:
    """The manager socket URL of a cluster that is up (``name``, else the only one, else the default's)."""
    ups = [r for r in records() if r.state == UP]
    if name:
        ups = [r for r in ups if r.name == name]
    elif len(ups) > 1:
        ups = [r for r in ups if r.name == DEFAULT_NAME] or ups[:1]
    return ups[0].manager_socket if ups else None


def engines_by_node(name: str | None = None) -> dict[str, str]:
    """Swarm node id -> engine URL, for every node of a cluster that is up (the swarm backend's per-node reach)."""
    ups = [r for r in records() if r.state == UP and (name is None or r.name == name)]
    return {n["node_id"]: n["socket"] for r in ups for n in r.nodes if n.get("node_id")}
