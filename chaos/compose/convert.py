"""A Compose project as a stack file: services, images, links through the proxy, and what was inferred."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.compose import connections
from chaos.compose.health import derive
from chaos.compose.services import ComposeService, read_service
from chaos.compose.source import Project

# The port a server listens on when nothing else says (image name -> port), as its image documents it.
WELL_KNOWN_PORTS = {
    "postgres": 5432, "postgresql": 5432, "postgis": 5432, "mysql": 3306, "mariadb": 3306, "redis": 6379,
    "valkey": 6379, "mongo": 27017, "mongodb": 27017, "rabbitmq": 5672, "memcached": 11211, "nginx": 80,
    "httpd": 80, "caddy": 80, "traefik": 80, "elasticsearch": 9200, "opensearch": 9200, "nats": 4222,
    "zookeeper": 2181, "kafka": 9092, "minio": 9000, "consul": 8500, "etcd": 2379, "cassandra": 9042,
}
PROXY_COMMAND = ["python", "-m", "chaos.proxy", "--host", "{bind}", "--port", "{port}", "--allow-remote",
                 "--token-env", "RQ_PROXY_TOKEN"]
PROXY_PORT = 8474


@dataclass
class Imported:
    """The stack file's content and what the import inferred or could not carry over."""

    stack: dict[str, Any]
    inferred: list[str] = field(default_factory=list)
    unrouted: list[connections.Unrouted] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # "service.key: reason"
    service_notes: dict[str, list[str]] = field(default_factory=dict)


def stack_name(project: str) -> str:
    name = re.sub(r"[^a-z0-9_-]", "-", project.lower()).strip("-_") or "compose"
    return name if name[0].isalpha() else f"p{name}"


def _image_port(image: str | None) -> int | None:
    if not image:
        return None
    base = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return WELL_KNOWN_PORTS.get(base) or WELL_KNOWN_PORTS.get(base.split("-", 1)[0])


def _command_port(command: list[str] | None) -> int | None:
    """A well-known server run by the command (``redis-server --port 6380``, ``postgres``, ``nginx``)."""
    if not command:
        return None
    for flag in ("--port", "-p"):
        if flag in command[1:-1] and command[command.index(flag) + 1].isdigit():
            return int(command[command.index(flag) + 1])
    program = command[0].rsplit("/", 1)[-1]
    return WELL_KNOWN_PORTS.get(program.removesuffix("-server").removesuffix("d"), WELL_KNOWN_PORTS.get(program))


def _listen_port(service: ComposeService, routed: dict[str, int]) -> tuple[int | None, str]:
    if service.name in routed:
        return routed[service.name], "the port its clients dial"
    tcp = [p for p in service.expose + service.ports if p.protocol == "tcp"]
    if tcp:
        return tcp[0].target, "its first exposed or published container port"
    if service.healthcheck:
        match = re.search(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0):(\d+)", service.healthcheck.as_text())
        if match:
            return int(match.group(1)), "the port its healthcheck asks"
    known = _image_port(service.image)
    if known:
        return known, f"the port image {service.image} serves on"
    program = _command_port(service.command)
    if program:
        return program, f"the port {service.command[0]} serves on"  # type: ignore[index]
    return None, "no port found (exposed, published, dialled by a client, or known for its image)"


def _relative(path: Path, to: Path) -> str:
    rel = os.path.relpath(path, to)
    return rel if rel.startswith(".") else f"./{rel}"


def _one_shots(services: dict[str, ComposeService]) -> set[str]:
    return {server for s in services.values() for server, how in s.depends_on.items() if how == "completed"}


def convert(project: Project, out_dir: Path, environ: dict[str, str] | None = None) -> Imported:
    """The stack file (as plain data) for ``project``, its paths relative to ``out_dir``."""
    out_dir = out_dir.resolve()
    everything = {name: read_service(project, name, environ) for name in project.services}
    dropped: list[str] = []
    skip: set[str] = set()
    for name, svc in everything.items():
        if svc.profiles:
            skip.add(name)
            dropped.append(f"{name}: in profile(s) {', '.join(svc.profiles)}: docker-compose does not start it by "
                           "default: left out")
        elif svc.network_mode and svc.network_mode.startswith(("service:", "container:")):
            skip.add(name)
            dropped.append(f"{name}: network_mode {svc.network_mode} shares another container's network: left out")
    for name in sorted(_one_shots(everything) - skip):
        skip.add(name)
        dropped.append(f"{name}: runs once to completion (service_completed_successfully); a stack runs long-lived "
                       "services: left out (run it before, e.g. docker-compose run)")
    for server in everything.values():
        for dep in server.depends_on:
            if dep not in everything:
                raise project.fail(server.name, ("depends_on", dep), f"unknown service {dep!r}")
        for dep in server.links:
            if dep not in everything:
                raise project.fail(server.name, ("links", dep), f"unknown service {dep!r}")
    services = {n: s for n, s in everything.items() if n not in skip}
    routing = connections.route(everything, project.directory, skip)
    result = Imported(stack={}, unrouted=routing.unrouted, dropped=dropped)
    proxy = "proxy" if "proxy" not in services else "rq-proxy"
    images: dict[str, Any] = {"roomquake-proxy": {"build": "proxy"}}
    stack_services: dict[str, Any] = {
        proxy: {"image": "roomquake-proxy", "command": PROXY_COMMAND, "port": PROXY_PORT,
                "health": {"kind": "http", "path": "/version", "bearer": "{proxy_token}"}, "metrics": None},
    }
    aliases: dict[str, list[str]] = {n: [] for n in services}
    for client in services.values():
        for linked, names in client.links.items():
            if linked in aliases:
                aliases[linked] += [a for a in names if a not in aliases[linked]]
    ports_used: set[int] = {PROXY_PORT}
    for name, svc in services.items():
        notes = result.service_notes.setdefault(name, [])
        entry: dict[str, Any] = {"image": name}
        if svc.build is not None:
            context: dict[str, Any] = {"path": _relative(svc.build.context, out_dir)}
            if svc.build.dockerfile:
                context["dockerfile"] = svc.build.dockerfile
            if svc.build.args:
                context["args"] = dict(svc.build.args)
            if svc.build.target:
                context["target"] = svc.build.target
            images[name] = {"context": context}
            notes.append(f"image built offline from {context['path']}" + (f" (tag {svc.image} not used)" if svc.image else ""))
        else:
            images[name] = {"tag": svc.image}
            notes.append(f"image {svc.image}: used as present in the engine, never pulled")
        if svc.command is not None:
            entry["command"] = routing.command[name]
        port, why = _listen_port(svc, routing.ports)
        entry["port"] = port
        if port is not None:
            ports_used.add(port)
        notes.append(f"port {port}: {why}" if port else f"port none: {why}")
        if svc.replicas != 1:
            entry["replicas"] = svc.replicas
            if svc.replicas == 0:
                entry["required"] = False
        env = routing.environment.get(name, {})
        if env:
            entry["env"] = env
        health = derive(svc, port)
        entry["health"] = health.spec
        notes.append(f"health: {health.note}")
        entry["metrics"] = None
        if svc.stop_grace_s is not None:
            entry["stop_timeout_s"] = svc.stop_grace_s
        if svc.restart != "no":
            entry["restart"] = "on-failure"
            notes.append(f"restart {svc.restart} -> on-failure (a crash is restarted; a kill or stop fault is not)")
        depends = {d: ("healthy" if how == "healthy" else "started") for d, how in svc.depends_on.items() if d not in skip}
        if depends:
            entry["depends_on"] = depends
        container = _container(svc, aliases[name], routing, project.directory, out_dir, notes, dropped)
        if container:
            entry["container"] = container
        volume = _data_volume(svc, notes, dropped)
        if volume:
            entry["volume"] = volume
        for key, reason in svc.ignored.items():
            dropped.append(f"{name}.{key}: {reason}")
        if svc.unset_env:
            dropped.append(f"{name}.environment: {', '.join(svc.unset_env)} have no value here (not set in the shell "
                           "at import): left out")
        if svc.network_mode == "host":
            notes.append("network_mode host: runs on the stack's network instead (nothing is bound on the host)")
        published = [p for p in svc.ports if p.published]
        if published:
            notes.append("published by Compose on " + ", ".join(f"{p.published}->{p.target}" for p in published)
                         + "; roomquake publishes the service's port on 127.0.0.1 at a free port (roomquake stack status)")
        for ext in svc.external_links:
            result.unrouted.append(connections.Unrouted(name, ext.split(":")[0], "external_links",
                                                        "a container outside the project: not interposed"))
        stack_services[name] = entry
    listeners_from = 20000
    while any(listeners_from <= p < listeners_from + 1000 for p in ports_used):
        listeners_from += 1000
    links = [f"{c}->{s}" for c, s in routing.links]
    result.stack = {
        "name": stack_name(project.name),
        "description": f"Imported from {', '.join(f.name for f in project.files)} (Compose project {project.name}) "
                       "by roomquake stack import",
        "images": images,
        "default_profile": "default",
        "profiles": {"default": {}},
        "services": stack_services,
        "proxy": {"service": proxy, "listeners_from": listeners_from, "token_env": "RQ_PROXY_TOKEN"},
        "links": links,
        "probes": _probes(services, stack_services),
    }
    result.inferred = _summary(project, services, routing, links)
    return result


def _container(svc: ComposeService, link_aliases: list[str], routing: connections.Routing, project_dir: Path,
               out_dir: Path, notes: list[str], dropped: list[str]) -> dict[str, Any]:
    container: dict[str, Any] = {}
    if svc.entrypoint is not None:
        container["entrypoint"] = routing.entrypoint[svc.name]
    names = [svc.name, *svc.network_aliases, *link_aliases, *([svc.container_name] if svc.container_name else [])]
    container["aliases"] = list(dict.fromkeys(names))
    mounts = []
    for mount in svc.volumes:
        if mount.kind != "bind" or not mount.source:
            continue
        source = (project_dir / mount.source).expanduser().resolve()
        if source.name == "docker.sock" or str(source).startswith("/var/run/docker"):
            dropped.append(f"{svc.name}.volumes: {mount.source}: the Docker socket is never mounted by roomquake")
            continue
        if not source.is_relative_to(project_dir):
            dropped.append(f"{svc.name}.volumes: {mount.source} is outside the project folder: not mounted")
            continue
        if not source.exists():
            dropped.append(f"{svc.name}.volumes: {mount.source} does not exist: not mounted")
            continue
        entry: dict[str, Any] = {"source": _relative(source, out_dir), "target": mount.target}
        if mount.read_only:
            entry["read_only"] = True
        mounts.append(entry)
    if mounts:
        container["mounts"] = mounts
        notes.append(f"{len(mounts)} file(s) or folder(s) of the project mounted as in Compose")
    if svc.user:
        container["user"] = svc.user
    if svc.working_dir:
        container["workdir"] = svc.working_dir
    return container


def _data_volume(svc: ComposeService, notes: list[str], dropped: list[str]) -> str | None:
    named = [m for m in svc.volumes if m.kind == "volume" and m.source]
    for mount in svc.volumes:
        if mount.kind == "tmpfs":
            dropped.append(f"{svc.name}.volumes: tmpfs {mount.target}: not carried over")
    if not named:
        return None
    if len(named) > 1:
        dropped.append(f"{svc.name}.volumes: only {named[0].target} is kept for the run; "
                       + ", ".join(m.target for m in named[1:]) + " live in the container")
    notes.append(f"named volume {named[0].source} -> a volume kept for the run at {named[0].target} (one per instance, "
                 "empty at the start of each run)")
    return named[0].target


def _probes(services: dict[str, ComposeService], entries: dict[str, Any]) -> dict[str, Any]:
    """Generic probes per service: how many run, whether its port answers, and for HTTP ones status and response time."""
    probes: dict[str, Any] = {}
    for name in services:
        entry = entries[name]
        probes[f"{name}.running"] = {"kind": "state", "service": name, "count": "running",
                                     "description": f"instances of {name} running"}
        if entry["port"] is None:
            continue
        probes[f"{name}.reachable"] = {"kind": "tcp", "service": name,
                                       "description": f"a TCP connection to {name}:{entry['port']} is accepted"}
        if entry["health"].get("kind") == "http":
            path = entry["health"].get("path", "/")
            probes[f"{name}.status"] = {"kind": "http", "service": name, "path": path, "measure": "status",
                                        "description": f"HTTP status of GET {path}"}
            probes[f"{name}.response_time"] = {
                "kind": "http", "service": name, "path": path, "measure": "latency", "q": 0.95, "window": "{window}",
                "params": {"window": "10s"},
                "description": f"p95 seconds of GET {path} over the window (each read is one request)"}
    return probes


def _summary(project: Project, services: dict[str, ComposeService], routing: connections.Routing,
             links: list[str]) -> list[str]:
    lines = [f"Compose format {', '.join(sorted(set(project.versions)))}; {len(services)} service(s); "
             f"{len(links)} link(s) through the fault proxy"]
    by_client: dict[str, list[str]] = {}
    for client, place, server in routing.rewritten:
        by_client.setdefault(f"{client}->{server}", []).append(place)
    for link, places in sorted(by_client.items()):
        lines.append(f"link {link}: {', '.join(dict.fromkeys(places))} rewritten to the proxy's listener")
    if project.unset_variables:
        lines.append(f"variables not set (read as empty, as docker-compose does): {', '.join(sorted(project.unset_variables))}")
    return lines
