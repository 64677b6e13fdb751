"""Planning: from a stack spec to instances, ports, proxies and routes.

The plan is pure data, the same for both backends except for addressing:
in Docker every instance listens on its service's port in its own network
namespace and is reached by name; locally every instance gets its own free
loopback port. A link ``client -> server`` becomes one proxy per server
instance, named ``client->server-n``; the client's ``RQ_ROUTES`` point at
those proxies' listeners, never at the server itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from chaos.probes import fill
from chaos.stack.errors import StackFileError
from chaos.stack.spec import StackSpec, env_text


@dataclass(frozen=True)
class InstancePlan:
    name: str  # "edge-2"
    service: str
    replica: int  # 1-based
    port: int | None  # where it listens (in its namespace); None: nowhere (a worker)
    bind: str
    host: str  # how the proxy reaches it: container name, or 127.0.0.1
    command: list[str]
    env: dict[str, str]
    entrypoint: list[str] | None = None  # docker: replaces the image's (a stack service's container.entrypoint)


@dataclass(frozen=True)
class ProxyPlan:
    name: str  # "crowd->edge-2"
    link: str  # "crowd->edge"
    client: str
    server: str  # server instance
    listen: str  # address handed to the proxy, e.g. "0.0.0.0:20003"
    route: str  # what the client dials, e.g. "proxy-1:20003"
    upstream: str  # "edge-2:8765"


@dataclass(frozen=True)
class Plan:
    profile: str
    instances: list[InstancePlan]
    proxies: list[ProxyPlan]
    tiers: list[list[str]] = field(default_factory=list)  # service start order, proxy first

    def instance(self, name: str) -> InstancePlan:
        for inst in self.instances:
            if inst.name == name:
                return inst
        raise KeyError(name)

    def of(self, service: str) -> list[InstancePlan]:
        return [i for i in self.instances if i.service == service]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Plan":
        return cls(
            profile=data["profile"],
            instances=[InstancePlan(**i) for i in data["instances"]],
            proxies=[ProxyPlan(**p) for p in data["proxies"]],
            tiers=[list(t) for t in data.get("tiers", [])],
        )


@dataclass(frozen=True)
class Addressing:
    """What differs between backends: where instances listen and how they are reached."""

    bind: str
    port_of: Callable[[str, str, int], int]  # (service, instance, spec port) -> port
    host_of: Callable[[str], str]  # instance -> host the proxy dials
    listener: Callable[[int], tuple[str, str]]  # i-th proxy listener -> (listen, route)
    data_of: Callable[[str, str], str] = lambda instance, path: path  # (instance, service's volume path) -> its path


def docker_addressing(proxy_instance: str, listeners_from: int) -> Addressing:
    return Addressing(
        bind="0.0.0.0",
        port_of=lambda service, instance, port: port,
        host_of=lambda instance: instance,
        listener=lambda i: (f"0.0.0.0:{listeners_from + i}", f"{proxy_instance}:{listeners_from + i}"),
    )


def local_addressing(ports: list[int], data_root: str = "") -> Addressing:
    """Loopback addressing drawing instance and listener ports from ``ports`` in order.

    An instance's kept data (a service's ``volume``) lives in ``data_root/<instance>``.
    """
    pool = iter(ports)
    assigned: dict[str, int] = {}

    def port_of(service: str, instance: str, port: int) -> int:
        if instance not in assigned:
            assigned[instance] = next(pool)
        return assigned[instance]

    def listener(i: int) -> tuple[str, str]:
        port = next(pool)
        return f"127.0.0.1:{port}", f"127.0.0.1:{port}"

    return Addressing(bind="127.0.0.1", port_of=port_of, host_of=lambda instance: "127.0.0.1", listener=listener,
                      data_of=lambda instance, path: f"{data_root}/{instance}" if data_root else path)


class Routes:
    """``{route:db}`` in a service's env or command: the proxy listener it dials for ``db``.

    ``{route:db:host}`` and ``{route:db:port}`` give the two halves. A server
    with several instances is reached through the proxy of its first one.
    """

    def __init__(self, routes: Mapping[str, str]) -> None:
        self.routes = routes

    def __format__(self, spec: str) -> str:
        server, _, part = spec.partition(":")
        route = self.routes.get(server) or self.routes.get(f"{server}-1")
        if route is None:
            raise StackFileError(f"{{route:{spec}}}: no link to {server!r} from this service")
        host, _, port = route.rpartition(":")
        return {"": route, "host": host, "port": port}[part]


def ports_needed(spec: StackSpec) -> int:
    instances = sum(s.replicas for s in spec.services.values())
    listeners = sum(spec.services[server].replicas for _, server in spec.link_pairs())
    return instances + listeners


def tiers(spec: StackSpec) -> list[list[str]]:
    """Start order: the proxy, then servers before their clients (depth in the link graph)."""
    servers_of: dict[str, set[str]] = {name: set() for name in spec.services}
    for client, server in spec.link_pairs():
        servers_of[client].add(server)
    depth: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> int:
        if name in path:
            raise StackFileError(f"links form a cycle: {' -> '.join(path + (name,))}")
        if name not in depth:
            depth[name] = 1 + max((visit(s, path + (name,)) for s in servers_of[name]), default=-1)
        return depth[name]

    proxy = spec.proxy.service
    for name in spec.services:
        visit(name, ())
    order: list[list[str]] = [[proxy]]
    for level in range(max(depth.values()) + 1):
        names = [n for n in spec.services if depth[n] == level and n != proxy and spec.services[n].replicas > 0]
        if names:
            order.append(names)
    return order


def make_plan(spec: StackSpec, profile: str | None, addressing: Addressing, secret: str = "",
              proxy_token: str = "") -> Plan:
    """Instances with their env and command, and one proxy per link and server instance.

    ``secret`` fills ``{secret}`` in commands and env (the run's state-store
    password); ``proxy_token`` goes to the proxy instance in the variable the
    stack file's ``proxy.token_env`` names.
    """
    profile_name = profile or spec.default_profile or next(iter(spec.profiles))
    profile_env = spec.profile_env(profile_name)
    names: dict[str, list[tuple[str, int]]] = {
        service: [(f"{service}-{n}", n) for n in range(1, svc.replicas + 1)] for service, svc in spec.services.items()
    }
    ports = {
        inst: (addressing.port_of(service, inst, spec.services[service].port)  # type: ignore[arg-type]
               if spec.services[service].port is not None else None)
        for service, insts in names.items()
        for inst, _ in insts
    }
    proxy_instance = f"{spec.proxy.service}-1"
    proxies: list[ProxyPlan] = []
    for client, server in spec.link_pairs():
        for inst, _ in names[server]:
            listen, route = addressing.listener(len(proxies))
            proxies.append(
                ProxyPlan(
                    name=f"{client}->{inst}",
                    link=f"{client}->{server}",
                    client=client,
                    server=inst,
                    listen=listen,
                    route=route,
                    upstream=f"{addressing.host_of(inst)}:{ports[inst]}",
                )
            )
    routes: dict[str, dict[str, str]] = {service: {} for service in spec.services}
    for proxy in proxies:
        routes[proxy.client][proxy.server] = proxy.route
        server_service = proxy.server.rsplit("-", 1)[0]
        if spec.services[server_service].replicas == 1:
            routes[proxy.client][server_service] = proxy.route
    instances: list[InstancePlan] = []
    for service, insts in names.items():
        svc = spec.services[service]
        for inst, replica in insts:
            values = {
                "service": service,
                "instance": inst,
                "replica": replica,
                "port": ports[inst],
                "bind": addressing.bind,
                "secret": secret,
                "data": addressing.data_of(inst, svc.volume) if svc.volume else "",
                "route": Routes(routes[service]),
            }
            env = dict(profile_env)
            env.update({k: env_text(fill(env_text(v), values)) for k, v in svc.env.items()})
            env.update(
                RQ_SERVICE=service,
                RQ_INSTANCE=inst,
                RQ_BIND=addressing.bind,
                RQ_PORT=str(ports[inst] or ""),
                RQ_ROUTES=json.dumps(routes[service], sort_keys=True),
            )
            if service == spec.proxy.service and spec.proxy.token_env and proxy_token:
                env[spec.proxy.token_env] = proxy_token
            instances.append(
                InstancePlan(
                    name=inst,
                    service=service,
                    replica=replica,
                    port=ports[inst],
                    bind=addressing.bind,
                    host=addressing.host_of(inst),
                    command=[str(fill(part, values)) for part in svc.command],
                    env=env,
                    entrypoint=([str(fill(part, values)) for part in svc.container.entrypoint]
                                if svc.container and svc.container.entrypoint is not None else None),
                )
            )
    if proxy_instance not in ports:
        raise StackFileError(f"the proxy service {spec.proxy.service!r} has no instance")
    return Plan(profile=profile_name, instances=instances, proxies=proxies, tiers=tiers(spec))
