"""One Compose service, read into typed values (short and long syntaxes alike), with located errors."""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.compose.source import ComposeFileError, Project, as_mapping
from chaos.compose.variables import VariableError, read_env_file

CONDITIONS = {"service_started": "started", "service_healthy": "healthy", "service_completed_successfully": "completed"}
# Keys read here; anything else of a service is reported as not carried over (see IGNORED for the reasons).
KNOWN = {"image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose", "healthcheck",
         "deploy", "scale", "volumes", "depends_on", "links", "external_links", "network_mode", "net", "networks",
         "container_name", "hostname", "user", "working_dir", "restart", "stop_grace_period", "profiles",
         "pull_policy", "init", "stdin_open", "tty", "labels", "logging", "extends", "secrets"}
IGNORED = {
    "privileged": "privileged containers are never started by roomquake",
    "cap_add": "capabilities are not carried over",
    "devices": "devices are not carried over",
    "pid": "a shared process namespace is not carried over",
    "ipc": "a shared IPC namespace is not carried over",
    "configs": "configs are not carried over (mount the file in volumes)",
    "volumes_from": "volumes_from is not carried over",
    "extra_hosts": "extra_hosts is not carried over",
    "dns": "dns is not carried over",
    "sysctls": "sysctls are not carried over",
    "ulimits": "ulimits are not carried over",
    "tmpfs": "tmpfs mounts are not carried over",
    "mem_limit": "resource limits are not carried over (squeeze faults set them)",
    "cpus": "resource limits are not carried over (squeeze faults set them)",
    "read_only": "a read-only root filesystem is not carried over",
}


@dataclass(frozen=True)
class Port:
    target: int
    published: str | None = None  # as written (host side), None when only exposed
    protocol: str = "tcp"


@dataclass(frozen=True)
class Mount:
    kind: str  # bind | volume | tmpfs
    source: str | None
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Healthcheck:
    test: list[str]  # ["CMD", ...] or ["CMD-SHELL", "..."]
    interval_s: float | None = None
    timeout_s: float | None = None
    retries: int | None = None
    start_period_s: float | None = None

    def as_text(self) -> str:
        if self.test[0] == "CMD-SHELL":
            return self.test[1]
        return shlex.join(self.test[1:])


@dataclass(frozen=True)
class Build:
    context: Path
    dockerfile: str | None = None
    args: dict[str, str] = field(default_factory=dict)
    target: str | None = None


@dataclass
class ComposeService:
    name: str
    image: str | None = None
    build: Build | None = None
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    environment: dict[str, str] = field(default_factory=dict)
    env_sources: dict[str, str] = field(default_factory=dict)  # variable -> "environment" | env file path
    ports: list[Port] = field(default_factory=list)
    expose: list[Port] = field(default_factory=list)
    healthcheck: Healthcheck | None = None
    healthcheck_disabled: bool = False
    replicas: int = 1
    volumes: list[Mount] = field(default_factory=list)
    depends_on: dict[str, str] = field(default_factory=dict)  # server -> started | healthy | completed
    links: dict[str, list[str]] = field(default_factory=dict)  # server -> aliases this client uses for it
    external_links: list[str] = field(default_factory=list)
    network_mode: str | None = None
    network_aliases: list[str] = field(default_factory=list)
    container_name: str | None = None
    user: str | None = None
    working_dir: str | None = None
    restart: str = "no"
    stop_grace_s: float | None = None
    profiles: list[str] = field(default_factory=list)
    unset_env: list[str] = field(default_factory=list)  # environment names without a value anywhere (left out)
    ignored: dict[str, str] = field(default_factory=dict)  # key -> why it is not carried over

    @property
    def names(self) -> list[str]:
        """Every name another container may reach this service by."""
        return [self.name, *self.network_aliases, *([self.container_name] if self.container_name else [])]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")


def duration(text: Any) -> float:
    """Compose durations: ``1m30s``, ``500ms``, ``10s``; a bare number is seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} is not a duration such as 10s or 1m30s")
    cleaned = text.strip()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration such as 10s or 1m30s")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def scalar_text(value: Any) -> str:
    """An environment value as the container sees it (YAML's true -> "true", 1.0 -> "1.0")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Reader:
    def __init__(self, project: Project, name: str, raw: dict[str, Any]) -> None:
        self.project, self.name, self.raw = project, name, raw

    def fail(self, path: tuple[str | int, ...], message: str) -> ComposeFileError:
        return self.project.fail(self.name, path, message)

    def argv(self, key: str) -> list[str] | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return shlex.split(value)  # as the Docker SDK splits a command given as text
            except ValueError as err:
                raise self.fail((key,), f"cannot split into arguments: {err}") from None
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            return [str(v) for v in value]
        raise self.fail((key,), "give text or a list of arguments")

    def environment(self, service: ComposeService, environ: dict[str, str]) -> None:
        files = self.raw.get("env_file")
        if isinstance(files, str):
            files = [files]
        if files is not None and not (isinstance(files, list) and all(isinstance(f, str) for f in files)):
            raise self.fail(("env_file",), "give a path or a list of paths")
        for i, rel in enumerate(files or []):
            path = (self.project.directory / rel).resolve()
            try:
                values = read_env_file(path)
            except VariableError as err:
                where = f"{path}:{err.line}:1" if err.line else self.project.where(self.name, "env_file", i)
                raise ComposeFileError(f"{where}: env_file: {err}") from None
            for key, value in values.items():
                self._set(service, key, value, str(rel), environ)
        env = self.raw.get("environment")
        if env is None:
            return
        if not isinstance(env, (dict, list)):
            raise self.fail(("environment",), "give a mapping (KEY: value) or a list (KEY=value)")
        if isinstance(env, dict):
            for key, value in env.items():
                if isinstance(value, (dict, list)):
                    raise self.fail(("environment", key), "a value is text, a number or empty")
        for key, value in as_mapping(env).items():
            self._set(service, key, None if value is None else scalar_text(value), "environment", environ)

    def _set(self, service: ComposeService, key: str, value: str | None, source: str, environ: dict[str, str]) -> None:
        if value is None:  # "KEY" alone: the value of the shell that runs docker-compose
            value = environ.get(key)
            if value is None:
                service.unset_env.append(key)
                service.environment.pop(key, None)
                return
        service.environment[key] = value
        service.env_sources[key] = source

    def ports(self, key: str) -> list[Port]:
        value = self.raw.get(key) or []
        if not isinstance(value, list):
            raise self.fail((key,), "give a list of ports")
        out: list[Port] = []
        for i, item in enumerate(value):
            try:
                out.extend(parse_port(item, exposed_only=(key == "expose")))
            except ValueError as err:
                raise self.fail((key, i), str(err)) from None
        return out

    def healthcheck(self, service: ComposeService) -> None:
        hc = self.raw.get("healthcheck")
        if hc is None:
            return
        if not isinstance(hc, dict):
            raise self.fail(("healthcheck",), "a mapping with test, interval, timeout, retries")
        if hc.get("disable") is True:
            service.healthcheck_disabled = True
            return
        test = hc.get("test")
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
            raise self.fail(("healthcheck", "test"), 'give ["CMD", "prog", "arg"], ["CMD-SHELL", "command"] or text')
        if test[0] == "NONE":
            service.healthcheck_disabled = True
            return
        if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
            raise self.fail(("healthcheck", "test", 0), f"{test[0]!r}: a test starts with CMD, CMD-SHELL or NONE")
        if test[0] == "CMD-SHELL":
            test = ["CMD-SHELL", " ".join(test[1:])]
        times: dict[str, float | None] = {}
        for key in ("interval", "timeout", "start_period"):
            try:
                times[key] = duration(hc[key]) if key in hc else None
            except ValueError as err:
                raise self.fail(("healthcheck", key), str(err)) from None
        retries = hc.get("retries")
        if retries is not None and (not isinstance(retries, int) or isinstance(retries, bool) or retries < 0):
            raise self.fail(("healthcheck", "retries"), "a whole number")
        service.healthcheck = Healthcheck(test, times["interval"], times["timeout"], retries, times["start_period"])

    def volumes(self) -> list[Mount]:
        value = self.raw.get("volumes") or []
        if not isinstance(value, list):
            raise self.fail(("volumes",), "give a list of volumes")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(parse_volume(item))
            except ValueError as err:
                raise self.fail(("volumes", i), str(err)) from None
        return out

    def file_secrets(self, service: ComposeService) -> list[Mount]:
        """Secrets from a file, as docker-compose 1.29 gives them: the file mounted read-only at /run/secrets/TARGET."""
        value = self.raw.get("secrets") or []
        if not isinstance(value, list):
            raise self.fail(("secrets",), "give a list of secret names or {source, target}")
        declared = self.project.top_level.get("secrets") or {}
        out, skipped = [], []
        for i, item in enumerate(value):
            source = item if isinstance(item, str) else item.get("source") if isinstance(item, dict) else None
            if not isinstance(source, str):
                raise self.fail(("secrets", i), "a secret name, or a mapping with source")
            target = item.get("target", source) if isinstance(item, dict) else source
            top = declared.get(source)
            if not isinstance(top, dict) or not isinstance(top.get("file"), str):
                skipped.append(source)  # external (a swarm's) or from the environment
                continue
            out.append(Mount("bind", top["file"], str(target) if str(target).startswith("/") else f"/run/secrets/{target}",
                             read_only=True))
        if skipped:
            service.ignored["secrets"] = f"{', '.join(skipped)}: only secrets from a file are carried over (give the others' values in environment)"
        return out

    def depends_on(self) -> dict[str, str]:
        value = self.raw.get("depends_on")
        if value is None:
            return {}
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return {v: "started" for v in value}
        if isinstance(value, dict):
            out = {}
            for server, spec in value.items():
                condition = spec.get("condition", "service_started") if isinstance(spec, dict) else None
                if condition not in CONDITIONS:
                    raise self.fail(("depends_on", server, "condition"),
                                    f"{condition!r}: a condition is one of {', '.join(CONDITIONS)}")
                out[server] = CONDITIONS[condition]
            return out
        raise self.fail(("depends_on",), "give a list of services or a mapping of service: {condition: ...}")

    def links(self) -> dict[str, list[str]]:
        value = self.raw.get("links") or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(("links",), "give a list such as [db, \"db:database\"]")
        out: dict[str, list[str]] = {}
        for item in value:
            server, _, alias = item.partition(":")
            out.setdefault(server, [])
            if alias and alias != server:
                out[server].append(alias)
        return out

    def network_aliases(self) -> list[str]:
        value = self.raw.get("networks")
        if value is None or isinstance(value, list):
            return []
        if not isinstance(value, dict):
            raise self.fail(("networks",), "give a list of networks or a mapping of network: {aliases: [...]}")
        out: list[str] = []
        for net, spec in value.items():
            aliases = (spec or {}).get("aliases", []) if isinstance(spec, dict) else []
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise self.fail(("networks", net, "aliases"), "give a list of names")
            out.extend(a for a in aliases if a not in out)
        return out

    def replicas(self) -> int:
        deploy = self.raw.get("deploy") or {}
        count = deploy.get("replicas") if isinstance(deploy, dict) else None
        if count is None:
            count = self.raw.get("scale", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            path = ("deploy", "replicas") if isinstance(deploy, dict) and "replicas" in deploy else ("scale",)
            raise self.fail(path, "a whole number of replicas")
        return count

    def build(self) -> Build | None:
        value = self.raw.get("build")
        if value is None:
            return None
        if isinstance(value, str):
            value = {"context": value}
        if not isinstance(value, dict) or not isinstance(value.get("context", "."), str):
            raise self.fail(("build",), "give a context path or {context, dockerfile, args, target}")
        args = value.get("args") or {}
        if not isinstance(args, (dict, list)):
            raise self.fail(("build", "args"), "give a mapping or a list of NAME=value")
        resolved = {}
        for key, arg in as_mapping(args).items():
            if arg is None:  # "NAME" alone: from the shell's environment at build time
                arg = os.environ.get(key)
                if arg is None:
                    continue
            resolved[key] = scalar_text(arg)
        context = (self.project.directory / value.get("context", ".")).resolve()
        if not context.is_dir():
            raise self.fail(("build", "context") if "context" in value else ("build",),
                            f"build context {str(value.get('context', '.'))!r} is not a folder ({context})")
        dockerfile = value.get("dockerfile")
        if dockerfile is not None and not isinstance(dockerfile, str):
            raise self.fail(("build", "dockerfile"), "a path inside the context")
        if not (context / (dockerfile or "Dockerfile")).is_file():
            raise self.fail(("build", "dockerfile") if dockerfile else ("build",),
                            f"no {dockerfile or 'Dockerfile'} in the build context {context}")
        return Build(context, dockerfile, resolved, value.get("target"))


def parse_port(item: Any, exposed_only: bool = False) -> list[Port]:
    """``"8000"``, ``"8000:80"``, ``"127.0.0.1:8000:80/udp"``, ``"9000-9001:9000-9001"`` or ``{target, published, protocol}``."""
    if isinstance(item, dict):
        target = item.get("target")
        if not isinstance(target, int) or isinstance(target, bool):
            raise ValueError("a long-syntax port needs target: <container port>")
        protocol = str(item.get("protocol", "tcp")).lower()
        published = item.get("published")
        return [Port(target, None if published is None else str(published), protocol)]
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise ValueError(f"{item!r} is not a port such as 8000, \"8000:80\" or {{target: 80, published: 8000}}")
    text = str(item)
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
        protocol = protocol.lower()
    host, container = "", text
    if text.startswith("["):  # [::1]:8000:80
        close = text.find("]")
        host, container = text[: close + 1], text[close + 2:]
    if ":" in container:
        host_part, container = container.rsplit(":", 1)
        host = f"{host}:{host_part}" if host else host_part
    targets = _port_range(container, text)
    if exposed_only and host:
        raise ValueError(f"{item!r}: expose takes container ports only")
    return [Port(t, host or None, protocol) for t in targets]


def _port_range(text: str, whole: str) -> list[int]:
    first, _, last = text.partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        raise ValueError(f"{whole!r} is not a port such as 8000, \"8000:80\" or \"127.0.0.1:8000:80/udp\"")
    low, high = int(first), int(last or first)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"{whole!r}: ports are 1-65535")
    return list(range(low, high + 1))


def parse_volume(item: Any) -> Mount:
    """``"./conf:/etc/app:ro"``, ``"data:/var/lib/x"``, ``"/var/lib/x"`` or ``{type, source, target, read_only}``."""
    if isinstance(item, dict):
        kind = item.get("type", "volume")
        target = item.get("target")
        if kind not in ("bind", "volume", "tmpfs", "npipe") or not isinstance(target, str):
            raise ValueError("a long-syntax volume needs type (bind, volume, tmpfs) and target")
        return Mount(kind, item.get("source"), target, bool(item.get("read_only", False)))
    if not isinstance(item, str):
        raise ValueError(f"{item!r} is not a volume such as ./conf:/etc/app:ro or data:/var/lib/app")
    parts = item.split(":")
    if len(parts) == 1:
        return Mount("volume", None, parts[0])
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) > 2 else "rw"
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    return Mount(kind, source, target, "ro" in mode.split(","))


def read_service(project: Project, name: str, environ: dict[str, str] | None = None) -> ComposeService:
    """The service ``name`` of the project, every field read and checked."""
    raw = project.services[name]
    reader = _Reader(project, name, raw)
    environ = dict(os.environ if environ is None else environ)
    service = ComposeService(name=name)
    image = raw.get("image")
    if image is not None and not isinstance(image, str):
        raise reader.fail(("image",), "an image reference such as postgres:15")
    service.image = image
    service.build = reader.build()
    if service.image is None and service.build is None:
        raise reader.fail((), "a service needs an image or a build context")
    service.command = reader.argv("command")
    service.entrypoint = reader.argv("entrypoint")
    reader.environment(service, environ)
    service.ports = reader.ports("ports")
    service.expose = reader.ports("expose")
    reader.healthcheck(service)
    service.replicas = reader.replicas()
    service.volumes = reader.volumes() + reader.file_secrets(service)
    service.depends_on = reader.depends_on()
    service.links = reader.links()
    external = raw.get("external_links") or []
    service.external_links = [str(x) for x in external] if isinstance(external, list) else []
    mode = raw.get("network_mode", raw.get("net"))
    service.network_mode = str(mode) if mode is not None else None
    service.network_aliases = reader.network_aliases()
    for key in ("container_name", "user", "working_dir"):
        value = raw.get(key)
        if value is not None and not isinstance(value, (str, int)):
            raise reader.fail((key,), "text")
        setattr(service, key, None if value is None else str(value))
    restart = raw.get("restart", "no")
    restart = "no" if restart is False else restart  # YAML 1.1's unquoted no
    if not isinstance(restart, str) or restart.split(":")[0] not in ("no", "always", "on-failure", "unless-stopped"):
        raise reader.fail(("restart",), f"{restart!r}: one of no, always, on-failure, unless-stopped")
    service.restart = restart.split(":")[0]
    if "stop_grace_period" in raw:
        try:
            service.stop_grace_s = duration(raw["stop_grace_period"])
        except ValueError as err:
            raise reader.fail(("stop_grace_period",), str(err)) from None
    profiles = raw.get("profiles") or []
    service.profiles = [str(p) for p in profiles] if isinstance(profiles, list) else []
    for key in raw:
        if key in IGNORED:
            service.ignored[key] = IGNORED[key]
        elif key not in KNOWN:
            service.ignored[key] = f"{key} is not carried over"
    return service
