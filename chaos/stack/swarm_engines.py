"""Which swarm the swarm backend drives, and how it reaches each node's engine.

The manager, first match wins:

1. the one a run recorded (``stack down``/``attach`` use the swarm the stack is on);
2. ``DOCKER_HOST`` (a real multi-host swarm: point it at a manager, TLS
   settings as the docker CLI reads them);
3. a local cluster that is up (``roomquake cluster up``; ``ROOMQUAKE_CLUSTER``
   picks one by name when there are several);
4. the default engine, when it is a swarm manager itself.

The swarm API has no "kill this one task" or "pause it": those go to the
engine of the node the task runs on. A local cluster's record names every
node's socket; on a real swarm, ``ROOMQUAKE_SWARM_ENGINES="host1=tcp://...,
host2=tcp://..."`` (keys: node hostname or id) names them, and the manager's
own node is always known. Operations on a task whose node's engine is
unknown fail with one line saying so.
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.engine import id_of
from chaos.errors import EngineError
from chaos.stack.errors import StackError, Unsupported

if TYPE_CHECKING:
    import docker

ENGINES_ENV = "ROOMQUAKE_SWARM_ENGINES"
CLUSTER_ENV = "ROOMQUAKE_CLUSTER"


def _connect(url: str, timeout: int = 60) -> "docker.DockerClient":
    from chaos.engine import connect

    return connect(timeout=timeout, environ={**os.environ, "DOCKER_HOST": url})


class SwarmGone(StackError):
    """The swarm a run was recorded on no longer exists (its local cluster was taken down)."""


def parse_engines(text: str) -> dict[str, str]:
    """``host1=tcp://a:2376,host2=unix:///x.sock`` -> {"host1": ..., "host2": ...}."""
    found: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        node, sep, url = part.partition("=")
        if not sep or not node.strip() or "://" not in url:
            raise StackError(f"{ENGINES_ENV}: {part.strip()!r} must read <node hostname or id>=<engine url>")
        found[node.strip()] = url.strip()
    return found


def _cluster_engines(manager_url: str | None = None) -> tuple[str | None, dict[str, str]]:
    """A local cluster's manager URL and node engines (the one whose manager is ``manager_url``, if given)."""
    from chaos.cluster.record import UP, records

    name = os.environ.get(CLUSTER_ENV)
    ups = [r for r in records() if r.state == UP and (not name or r.name == name)]
    if manager_url is not None:
        ups = [r for r in ups if r.manager_socket == manager_url]
    elif len(ups) > 1:
        ups = [r for r in ups if r.name == "rq"] or ups[:1]
    if not ups:
        return None, {}
    record = ups[0]
    return record.manager_socket, {n["node_id"]: n["socket"] for n in record.nodes if n.get("node_id")}


def _is_manager(client: "docker.DockerClient") -> bool:
    swarm = client.info().get("Swarm", {})
    return bool(swarm.get("ControlAvailable"))


@dataclass
class SwarmEngines:
    manager_url: str
    manager: "docker.DockerClient"
    node_urls: dict[str, str]  # swarm node id -> engine URL
    _clients: dict[str, "docker.DockerClient"] = field(default_factory=dict)

    @classmethod
    def choose(cls, recorded: dict[str, Any] | None = None) -> "SwarmEngines":
        if recorded and recorded.get("manager"):
            url = str(recorded["manager"])
            from chaos.cluster.daemon import RUN_ROOT

            if url.startswith(f"unix://{RUN_ROOT}/") and not Path(url.removeprefix("unix://")).exists():
                raise SwarmGone(f"the local cluster this run was on is gone ({url}): so are its services")
            return cls._open(url, dict(recorded.get("engines", {})), f"the swarm this run is on ({url})")
        if os.environ.get("DOCKER_HOST"):
            url = os.environ["DOCKER_HOST"]
            _, engines = _cluster_engines(url)
            return cls._open(url, engines, f"DOCKER_HOST ({url})")
        local_url, engines = _cluster_engines()
        if local_url:
            return cls._open(local_url, engines, f"the local cluster ({local_url})")
        from chaos.engine import DEFAULT_SOCKET

        return cls._open(f"unix://{DEFAULT_SOCKET}", {}, "the default engine", hint=(
            "start a local cluster (roomquake cluster up --nodes 3), or set DOCKER_HOST to a swarm manager"))

    @classmethod
    def for_manager(cls, url: str) -> "SwarmEngines":
        """The engines of the swarm whose manager answers at ``url`` (a local cluster's nodes are known)."""
        _, engines = _cluster_engines(url)
        return cls._open(url, engines, f"the swarm at {url}")

    @classmethod
    def _open(cls, url: str, engines: dict[str, str], what: str, hint: str | None = None) -> "SwarmEngines":
        try:
            manager = _connect(url)
        except EngineError as err:
            raise StackError(f"swarm backend: {what}: {err.one_line()}") from None
        if not _is_manager(manager):
            manager.close()
            raise StackError(f"swarm backend: {what} is not a swarm manager",
                             hint=hint or "point DOCKER_HOST at a manager node (docker node ls must work there)")
        found = cls(manager_url=url, manager=manager, node_urls=dict(engines))
        found._add_named(parse_engines(os.environ.get(ENGINES_ENV, "")))
        own = str(manager.info()["Swarm"].get("NodeID", ""))
        found.node_urls.setdefault(own, url)
        return found

    def _add_named(self, named: dict[str, str]) -> None:
        if not named:
            return
        for node in self.manager.nodes.list():
            hostname = node.attrs.get("Description", {}).get("Hostname", "")
            for key in (id_of(node), hostname):
                if key in named:
                    self.node_urls[id_of(node)] = named[key]

    def node(self, node_id: str, doing: str) -> "docker.DockerClient":
        """The engine of swarm node ``node_id`` (for ``doing`` something to a task on it)."""
        if node_id in self._clients:
            return self._clients[node_id]
        url = self.node_urls.get(node_id)
        if url is None:
            raise Unsupported(
                f"{doing}: it runs on swarm node {node_id[:12]}, whose engine this toolkit cannot reach",
                hint=f"name it in {ENGINES_ENV}=<node hostname>=<engine url>,...",
            )
        try:
            client = self.manager if url == self.manager_url else _connect(url, timeout=30)
        except EngineError as err:
            raise StackError(f"{doing}: the engine of node {node_id[:12]} at {url}: {err.one_line()}") from None
        self._clients[node_id] = client
        return client

    def all_nodes(self) -> list["docker.DockerClient"]:
        """A client of every node engine this toolkit can reach (volumes live on the nodes)."""
        found = []
        for node_id in list(self.node_urls):
            try:
                client = self.node(node_id, "reaching")
                client.ping()
            except Exception:  # noqa: BLE001 - a lost node's engine (refused, no socket): nothing of it to reach
                continue
            found.append(client)
        return found

    def record(self) -> dict[str, Any]:
        return {"manager": self.manager_url, "engines": dict(self.node_urls)}

    def close(self) -> None:
        for client in {id(c): c for c in [self.manager, *self._clients.values()]}.values():
            client.close()
