"""Form the swarm: node 1 initialises it and is the (only) manager, the others join as workers.

One manager keeps the raft quorum trivial on a 2-core machine; node faults
that need a surviving manager target workers. Every node is labelled with
its cluster and index (``node.labels.io.roomquake.node==2`` in a placement
constraint), since the swarm's own node ids are random.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chaos.cluster.network import OVERLAY_POOL
from chaos.cluster.system import ClusterError

if TYPE_CHECKING:
    import docker

CLUSTER_LABEL = "io.roomquake.cluster"
NODE_LABEL = "io.roomquake.node"


def _fail(err: Exception, doing: str) -> ClusterError:
    from chaos.engine import failure

    return ClusterError(failure(err, doing).one_line())


def init(manager: "docker.DockerClient", address: str) -> str:
    """Initialise the swarm on ``manager``; returns the worker join token."""
    import docker

    try:
        manager.swarm.init(
            advertise_addr=address, listen_addr=f"{address}:2377",
            default_addr_pool=[OVERLAY_POOL], subnet_size=24,
        )
        manager.swarm.reload()
        return str(manager.swarm.attrs["JoinTokens"]["Worker"])
    except docker.errors.DockerException as err:
        raise _fail(err, "initialising the swarm on node 1") from err


def join(worker: "docker.DockerClient", index: int, address: str, manager_address: str, token: str) -> None:
    import docker

    try:
        worker.swarm.join(
            remote_addrs=[f"{manager_address}:2377"], join_token=token,
            listen_addr=f"{address}:2377", advertise_addr=address,
        )
    except docker.errors.DockerException as err:
        raise _fail(err, f"joining node {index} to the swarm") from err


def node_id(engine: "docker.DockerClient") -> str:
    return str(engine.info()["Swarm"]["NodeID"])


def label(manager: "docker.DockerClient", node: str, cluster: str, index: int) -> None:
    import docker

    try:
        found = manager.nodes.get(node)
        spec = dict(found.attrs["Spec"])
        spec["Labels"] = {**spec.get("Labels", {}), CLUSTER_LABEL: cluster, NODE_LABEL: str(index)}
        found.update(spec)
    except docker.errors.DockerException as err:
        raise _fail(err, f"labelling node {index}") from err
