"""Service-to-service connections of a Compose project, and their rewrite to the fault proxy.

A client reaches a server by a name (the server's service name, a network
alias, its container_name, or an alias its ``links`` give it) and a port.
Those addresses are found in the client's environment values, command and
entrypoint:

- URLs: ``postgres://app:secret@db:5432/app`` (no port: the scheme's, e.g.
  ``redis://cache`` is port 6379), several hosts (``mongodb://a:1,b:2``);
- ``host:port``: ``--broker queue:6379``, ``BROKERS=kafka1:9092,kafka2:9092``;
- a variable that is only a host name (``DB_HOST=db``) beside one that is
  only its port (``DB_PORT=5432``).

Each address becomes a template the stack file fills per run with the fault
proxy's listener for that link (``{route:db}`` -> ``proxy-1:20003``,
``{route:db:host}``, ``{route:db:port}``), so every such connection goes
through the proxy. What cannot be interposed is reported with its reason:
a UDP port, a server in the host's network, a replicated server behind one
name, a second port of a server, a host name without a port the client
dials by default, a name that only appears (an address computed at run
time), a link that ``depends_on`` or ``links`` declares but no address of
which was found, an address in a file mounted into the container.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from chaos.compose.services import ComposeService

# Default ports of URL schemes (a URL without a port dials these).
SCHEME_PORTS = {
    "http": 80, "https": 443, "ws": 80, "wss": 443, "postgres": 5432, "postgresql": 5432, "mysql": 3306,
    "mariadb": 3306, "redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671, "mongodb": 27017, "nats": 4222,
    "memcached": 11211, "mqtt": 1883, "ftp": 21, "smtp": 25, "ldap": 389, "grpc": 80, "tcp": None, "udp": None,
}
URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<userinfo>[^@/\s?#]*@)?(?P<hosts>[^/\s?#\"']+)")
HOST_PORT = re.compile(r"(?<![\w.@/:\-])(?P<host>[A-Za-z0-9][A-Za-z0-9_.\-]*):(?P<port>\d{1,5})(?![\w.:])")
HOST_VAR = re.compile(r"^(?P<prefix>.*?)_?(HOST|HOSTNAME|SERVER|ADDR|ADDRESS)$")
MAX_SCANNED_FILES = 50
MAX_SCANNED_BYTES = 256 * 1024


@dataclass(frozen=True)
class Place:
    """Where in a client an address sits: ("environment", "DATABASE_URL") or ("command", 3)."""

    section: str
    key: str | int

    def __str__(self) -> str:
        return f"{self.section}.{self.key}" if self.section == "environment" else f"{self.section}[{self.key}]"


@dataclass(frozen=True)
class Address:
    """One address of a server found in a client."""

    client: str
    server: str
    place: Place
    start: int  # span of the text to replace in the value
    end: int
    port: int | None
    scheme: str | None = None  # for a URL
    udp: bool = False
    host_only: bool = False  # a variable that is the host name alone


@dataclass(frozen=True)
class Unrouted:
    """A connection that is not interposed, and why."""

    client: str
    server: str
    where: str
    reason: str


@dataclass
class Routing:
    """The outcome: links through the proxy, each server's proxied port, rewritten values, what stays direct."""

    links: list[tuple[str, str]] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)  # server -> the port its links go to
    environment: dict[str, dict[str, str]] = field(default_factory=dict)  # client -> rewritten env (templates)
    command: dict[str, list[str]] = field(default_factory=dict)
    entrypoint: dict[str, list[str]] = field(default_factory=dict)
    rewritten: list[tuple[str, str, str]] = field(default_factory=list)  # (client, place, server)
    unrouted: list[Unrouted] = field(default_factory=list)


def escape(text: str) -> str:
    """Literal text in a stack file's templated strings: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def names_of(services: dict[str, ComposeService], client: ComposeService) -> dict[str, str]:
    """Host name -> server service, as ``client`` resolves names (its link aliases included)."""
    out: dict[str, str] = {}
    for server in services.values():
        for name in server.names:
            out.setdefault(name, server.name)
    for linked, aliases in client.links.items():
        for alias in aliases:
            out[alias] = linked
    out.pop(client.name, None)
    return {k: v for k, v in out.items() if v != client.name}


def _values(client: ComposeService) -> list[tuple[Place, str]]:
    found = [(Place("environment", k), v) for k, v in client.environment.items()]
    found += [(Place("command", i), v) for i, v in enumerate(client.command or [])]
    found += [(Place("entrypoint", i), v) for i, v in enumerate(client.entrypoint or [])]
    return found


def find_addresses(services: dict[str, ComposeService], client: ComposeService) -> list[Address]:
    names = names_of(services, client)
    found: list[Address] = []
    for place, value in _values(client):
        taken: list[tuple[int, int]] = []
        for url in URL.finditer(value):
            scheme = url.group("scheme").lower().rsplit("+", 1)[-1]
            offset = url.start("hosts")
            for part in re.finditer(r"[^,]+", url.group("hosts")):
                host, _, port = part.group().partition(":")
                if host not in names:
                    continue
                number = int(port) if port.isdigit() else SCHEME_PORTS.get(scheme)
                found.append(Address(client.name, names[host], place, offset + part.start(), offset + part.end(), number,
                                     scheme=scheme, udp=scheme == "udp"))
            taken.append((url.start(), url.end()))
        for match in HOST_PORT.finditer(value):
            if any(a <= match.start() < b for a, b in taken) or match.group("host") not in names:
                continue
            found.append(Address(client.name, names[match.group("host")], place, match.start(), match.end(),
                                 int(match.group("port"))))
        if place.section == "environment" and value in names:
            found.append(Address(client.name, names[value], place, 0, len(value), None, host_only=True))
    return found


def _mentions(services: dict[str, ComposeService], client: ComposeService, used: set[tuple[Place, int]]) -> list[Unrouted]:
    """Server names that appear in the client's values other than as an address we rewrite."""
    names = names_of(services, client)
    out: list[Unrouted] = []
    for place, value in _values(client):
        for name, server in names.items():
            for match in re.finditer(rf"(?<![\w.\-]){re.escape(name)}(?![\w\-])", value):
                if (place, match.start()) in used:
                    continue
                out.append(Unrouted(client.name, server, str(place),
                                    f"mentions {name!r} but not as host:port or a URL (an address computed at run time?): "
                                    "not interposed"))
                break
    return out


def _scan_mounts(services: dict[str, ComposeService], client: ComposeService, project_dir: Path) -> list[Unrouted]:
    """Addresses of other services in files mounted into the client: roomquake does not rewrite files."""
    names = names_of(services, client)
    out: list[Unrouted] = []
    files: list[Path] = []
    for mount in client.volumes:
        if mount.kind != "bind" or not mount.source:
            continue
        source = (project_dir / mount.source).expanduser().resolve()
        if source.is_file():
            files.append(source)
        elif source.is_dir():
            files.extend(sorted(p for p in source.rglob("*") if p.is_file())[:MAX_SCANNED_FILES])
    for path in files[:MAX_SCANNED_FILES]:
        try:
            if path.stat().st_size > MAX_SCANNED_BYTES:
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for match in list(URL.finditer(line)) + list(HOST_PORT.finditer(line)):
                host = (match.groupdict().get("hosts") or match.groupdict().get("host") or "").split(":")[0]
                if host in names:
                    rel = path.relative_to(project_dir) if path.is_relative_to(project_dir) else path
                    out.append(Unrouted(client.name, names[host], f"{rel}:{number}",
                                        f"address {match.group().strip()!r} in a file mounted into {client.name}: "
                                        "roomquake rewrites environment and command only: not interposed"))
                    break
    return out


def _port_pairs(client: ComposeService, addresses: list[Address]) -> dict[str, tuple[str, int]]:
    """Host-only variables paired with a sibling port variable: DB_HOST=db with DB_PORT=5432 -> {DB_HOST: (DB_PORT, 5432)}."""
    pairs: dict[str, tuple[str, int]] = {}
    for a in addresses:
        if not a.host_only:
            continue
        match = HOST_VAR.match(str(a.place.key))
        if not match:
            continue
        prefix = match.group("prefix")
        for candidate in (f"{prefix}_PORT", f"{prefix}PORT"):
            value = client.environment.get(candidate, "")
            if candidate != str(a.place.key) and value.isdigit():
                pairs[str(a.place.key)] = (candidate, int(value))
                break
    return pairs


def route(services: dict[str, ComposeService], project_dir: Path, skip: set[str] = frozenset()) -> Routing:  # type: ignore[assignment]
    """Every connection found, the links that carry them, and the clients' values rewritten to use them.

    ``skip``: services left out of the stack (their connections are not routed).
    """
    result = Routing()
    found: dict[str, list[Address]] = {}
    pairs: dict[str, dict[str, tuple[str, int]]] = {}
    for name, client in services.items():
        if name in skip:
            continue
        addresses = [a for a in find_addresses(services, client) if a.server not in skip]
        pairs[name] = _port_pairs(client, addresses)
        for a in addresses:
            if a.host_only and str(a.place.key) in pairs[name]:
                addresses[addresses.index(a)] = Address(a.client, a.server, a.place, a.start, a.end,
                                                        pairs[name][str(a.place.key)][1], host_only=True)
        found[name] = addresses
    # Each server is interposed on one port: the one its clients use most (ties: the lowest).
    usage: dict[str, Counter[int]] = {}
    for addresses in found.values():
        for a in addresses:
            if a.port is not None and not a.udp:
                usage.setdefault(a.server, Counter())[a.port] += 1
    for server, counts in usage.items():
        result.ports[server] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    links: set[tuple[str, str]] = set()
    for name, addresses in found.items():
        client = services[name]
        env = {k: escape(v) for k, v in client.environment.items()}
        argv = {"command": [escape(v) for v in client.command or []],
                "entrypoint": [escape(v) for v in client.entrypoint or []]}
        edits: dict[Place, list[tuple[int, int, str]]] = {}
        used: set[tuple[Place, int]] = set()
        for a in addresses:
            reason = _why_not(a, services, result.ports)
            where = str(a.place)
            if reason:
                result.unrouted.append(Unrouted(name, a.server, where, reason))
                used.add((a.place, a.start))
                continue
            if a.host_only:
                port_var, _ = pairs[name][str(a.place.key)]
                edits.setdefault(a.place, []).append((a.start, a.end, f"{{route:{a.server}:host}}"))
                edits.setdefault(Place("environment", port_var), []).append(
                    (0, len(client.environment[port_var]), f"{{route:{a.server}:port}}"))
            elif a.scheme is not None and ":" not in _text(client, a.place)[a.start:a.end]:
                edits.setdefault(a.place, []).append((a.start, a.end, f"{{route:{a.server}}}"))  # adds the proxy's port
            else:
                edits.setdefault(a.place, []).append((a.start, a.end, f"{{route:{a.server}}}"))
            used.add((a.place, a.start))
            links.add((name, a.server))
            result.rewritten.append((name, where, a.server))
        for place, spans in edits.items():
            text = _rewrite(_text(client, place), spans)
            if place.section == "environment":
                env[str(place.key)] = text
            else:
                argv[place.section][int(place.key)] = text
        result.environment[name] = env
        result.command[name] = argv["command"]
        result.entrypoint[name] = argv["entrypoint"]
        mentioned = {(u.client, u.server, u.where) for u in result.unrouted}
        for u in _mentions(services, client, used):
            if (u.client, u.server, u.where) not in mentioned and (name, u.server) not in links:
                result.unrouted.append(u)
        for u in _scan_mounts(services, client, project_dir):
            if u.server not in skip:
                result.unrouted.append(u)
        declared = {s: "depends_on" for s in client.depends_on} | {s: "links" for s in client.links}
        for server, how in declared.items():
            if server in skip or server not in services or (name, server) in links:
                continue
            if any(u.client == name and u.server == server for u in result.unrouted):
                continue
            result.unrouted.append(Unrouted(name, server, how,
                                            f"{name} -> {server} is declared in {how}, but no address of {server} was "
                                            f"found in {name}'s environment or command: not interposed ({name} reaches "
                                            f"{server} directly by its name)"))
    result.links = sorted(links)
    return result


def _text(client: ComposeService, place: Place) -> str:
    if place.section == "environment":
        return client.environment[str(place.key)]
    return (client.command if place.section == "command" else client.entrypoint or [])[int(place.key)]  # type: ignore[index]


def _rewrite(text: str, spans: list[tuple[int, int, str]]) -> str:
    out, last = [], 0
    for start, end, template in sorted(set(spans)):
        out.append(escape(text[last:start]))
        out.append(template)
        last = end
    out.append(escape(text[last:]))
    return "".join(out)


def _why_not(a: Address, services: dict[str, ComposeService], ports: dict[str, int]) -> str | None:
    server = services[a.server]
    if a.udp or any(p.target == a.port and p.protocol == "udp" for p in server.ports + server.expose) and not any(
            p.target == a.port and p.protocol == "tcp" for p in server.ports + server.expose):
        return f"UDP port {a.port} of {a.server}: the fault proxy carries TCP only: not interposed"
    if server.network_mode and (server.network_mode == "host" or server.network_mode.startswith(("service:", "container:"))):
        return f"{a.server} runs with network_mode: {server.network_mode}: not interposed"
    if server.replicas > 1:
        return (f"{a.server} runs {server.replicas} replicas behind one name: one address cannot spread over their "
                "proxies: not interposed (scale it to 1 in the Compose file to interpose it)")
    if a.port is None:
        scheme = f" ({a.scheme}:// has no default port)" if a.scheme else ""
        return (f"names {a.server} without a port{scheme}: the client dials a port the proxy cannot take over: "
                f"not interposed (give the port, e.g. {a.server}:PORT, or a {a.place.key}_PORT variable beside it)")
    if ports.get(a.server) != a.port:
        return (f"port {a.port} of {a.server}: a stack service is interposed on one port "
                f"({ports.get(a.server)}, the one its clients use most): not interposed")
    return None
