"""A multi-node Docker swarm on this one machine, for tests and game days.

    roomquake cluster up --nodes 3     # root: namespaces, a bridge, firewall rules, one dockerd per node
    roomquake cluster status
    eval "$(roomquake cluster env)"    # DOCKER_HOST=the manager: docker node ls, --backend swarm
    roomquake cluster down

Each node is a dockerd in its own network namespace (and UTS namespace, for
its own hostname), joined to one host-only bridge by a veth pair; node 1
initialises the swarm and is its only manager, the others join as workers.
Everything made is written to the cluster's record first
(chaos.cluster.record), so ``cluster down`` and ``roomquake clean`` remove
exactly that.
"""

from chaos.cluster.lifecycle import DEFAULT_NAME, down, engines_by_node, live_manager, node_statuses, sweep_dead_clusters, up
from chaos.cluster.record import ClusterRecord, load, records
from chaos.cluster.system import ClusterError, NeedsRoot

__all__ = [
    "DEFAULT_NAME",
    "ClusterError",
    "ClusterRecord",
    "NeedsRoot",
    "down",
    "engines_by_node",
    "live_manager",
    "load",
    "node_statuses",
    "records",
    "sweep_dead_clusters",
    "up",
]
