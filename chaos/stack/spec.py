"""The stack file: services, links through the proxy, profiles, probes.

A stack file describes a system under test generically; nothing here knows
audio rooms. ``load_stack(path)`` parses and validates it; every mistake is
one ``StackFileError`` naming ``file:line:column`` and the field, raised
before anything is started.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos import yamldoc
from chaos.probes import ProbeSpec
from chaos.problems import Problem, Translator, field_name, members, plural
from chaos.stack.errors import StackFileError

Scalar = str | int | float | bool
NAME = r"^[a-z][a-z0-9_-]*$"
CONSTRAINT = r"^\s*node\.[A-Za-z0-9_.-]+\s*(==|!=)\s*\S+\s*$"  # swarm's syntax: node.<attribute>==|!=<value>
LINK = re.compile(r"^\s*([a-z][a-z0-9_-]*)\s*->\s*([a-z][a-z0-9_-]*)\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ContextImage(_Model):
    """An image built offline from a build context (a Compose service's ``build``); nothing is pulled."""

    path: str = Field(description="the build context, relative to the stack file")
    dockerfile: str | None = Field(default=None, description="inside the context (default: Dockerfile)")
    args: dict[str, str] = Field(default_factory=dict, description="build arguments")
    target: str | None = Field(default=None, description="the stage to build")


class ImageSpec(_Model):
    """An image: one roomquake builds offline (``build: services``), one built from a ``context``, or an existing ``tag``."""

    build: Literal["services", "base", "proxy"] | None = Field(default=None, description="built by chaos.images (roomquake images)")
    tag: str | None = Field(default=None, description="an image already present in the engine")
    context: ContextImage | None = Field(default=None, description="built from a build context, FROM images present in the engine")

    @model_validator(mode="after")
    def _one_source(self) -> "ImageSpec":
        if sum(1 for source in (self.build, self.tag, self.context) if source) != 1:
            raise ValueError("an image needs exactly one of build, tag or context")
        return self


class HealthSpec(_Model):
    kind: Literal["http", "redis", "tcp", "none"] = Field(
        default="http", description="none: healthy once running (a service that listens on no port)")
    path: str = "/health"
    password: str | None = Field(default=None, description='redis: AUTH with this first (e.g. "{secret}", the run\'s secret)')
    bearer: str | None = Field(default=None, description='http: send this as a bearer token (e.g. "{proxy_token}")')
    timeout_s: float = Field(default=60.0, gt=0, description="bring-up fails if not healthy by then (busy machines are slow)")


class MountSpec(_Model):
    source: str = Field(description="a file or folder, relative to the stack file")
    target: str = Field(description="where it appears in the container")
    read_only: bool = False


class ContainerOptions(_Model):
    """How the container backends (docker, swarm) run a service's containers beyond its command (a Compose import sets these)."""

    entrypoint: list[str] | None = Field(default=None, description="replaces the image's entrypoint")
    aliases: list[str] = Field(default_factory=list, description="more names of every instance on the stack's network")
    mounts: list[MountSpec] = Field(default_factory=list, description="files or folders of the project mounted in")
    user: str | None = None
    workdir: str | None = None


class PlacementSpec(_Model):
    """Where the swarm backend runs a service's instances (the docker and local backends ignore it)."""

    spread: bool = Field(default=False, description="instances round robin over the eligible nodes, each started on its own")
    reschedule: bool = Field(
        default=True, description="spread: once placed, an instance whose node is lost is moved by the swarm to another "
                                  "eligible node (false: it stays pinned to its first node; an instance with kept data always is)")
    per_node: int | None = Field(default=None, ge=1, description="this many instances on every eligible node (the replica count follows the nodes)")
    constraints: list[Annotated[str, Field(pattern=CONSTRAINT)]] = Field(
        default_factory=list, description="swarm constraints, e.g. node.labels.zone==east")
    avoid_managers: bool = Field(default=False, description="only worker nodes, when the swarm has a ready one that fits "
                                                            "(a swarm of managers only still runs the service)")


class ServiceSpec(_Model):
    image: str
    command: list[str] = Field(default_factory=list, description="argv; empty: the image's own command (docker and swarm only)")
    port: int | None = Field(ge=1, le=65535, description="port the service listens on in its own network namespace; "
                                                         "null: none (a worker)")
    replicas: int = Field(default=1, ge=0)
    required: bool = Field(default=True, description="a scale of zero is refused")
    env: dict[str, Scalar] = Field(default_factory=dict)
    health: HealthSpec = Field(default_factory=HealthSpec)
    metrics: str | None = "/metrics"
    stop_timeout_s: float = Field(default=3.0, ge=0)
    restart: Literal["no", "on-failure"] = Field(
        default="no",
        description="on-failure: an instance that exits with a non-zero code by itself (a crash) is started again, "
                    "after 0.1 s doubling to 60 s; never after a kill or stop fault (as Docker's restart policy)",
    )
    volume: str | None = Field(
        default=None, description="path inside the instance for data kept for the run (docker: a labelled volume; "
                                  "local: a folder under the run's folder); '{data}' in command or env names it",
    )
    depends_on: dict[str, Literal["started", "healthy"]] = Field(
        default_factory=dict, description="docker: started only once these services are started (or healthy)")
    container: ContainerOptions | None = Field(default=None, description="docker and swarm only: entrypoint, aliases, mounts, user")
    preload: list[str] = Field(
        default_factory=list,
        description="modules a fork server imports once before forking the instances of this service "
                    "(their libraries, not the module the command runs: that one runs as __main__)",
    )
    placement: PlacementSpec | None = None

    @field_validator("preload")
    @classmethod
    def _module_names(cls, modules: list[str]) -> list[str]:
        for module in modules:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", module):
                raise ValueError(f"{module!r} is not a module name")
        return modules


class ProxySpec(_Model):
    service: str = "proxy"
    listeners_from: int = Field(default=20000, ge=1024, le=65000, description="first listener port in a container")
    token_env: str | None = Field(
        default=None, pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="the proxy reads its API token from this variable; the toolkit makes one per run and sends it",
    )


class AutomationSpec(_Model):
    service: str


class SelectorSpec(_Model):
    """Instances chosen by a probe whose value is an instance name (or a list of them)."""

    probe: str
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    service: str | None = Field(default=None, description="the service whose instances it picks, if always one "
                                "(explore then counts it against that service only, and leaves it out when "
                                "--services leaves the service out)")


class LoadStep(_Model):
    service: str
    instance: str | None = None
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str
    body: dict[str, Any] | None = None
    split: str | None = Field(default=None, description="integer body field divided among the instances")
    accept: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])


class LoadAction(_Model):
    params: dict[str, Any] = Field(default_factory=dict)
    steps: list[LoadStep] = Field(min_length=1)
    description: str = ""


class FreshCheck(_Model):
    """What a stack that served no experiment shows: checked after a reused or attached stack is renewed."""

    probe: str
    expect: str = Field(description='an expectation as in experiment files, e.g. "== 0"')


class HttpSource(_Model):
    """A JSON document served by every running instance of a service (``{room}`` is filled in)."""

    service: str
    path: str
    field: str | None = Field(default=None, description="dotted path to the part wanted (default: the whole body)")


class HistorySpec(_Model):
    """Where the checkers of chaos.checkers read what happened (see chaos/checkers/history.py for the format)."""

    listeners: HttpSource | None = Field(default=None, description="per-listener histories, one document per instance")
    relaunches: HttpSource | None = Field(default=None, description="relaunch records: [{generation, failed_at, completed_at, ...}]")


class LocalSpec(_Model):
    """How the local backend runs the services: ``python`` becomes this interpreter."""

    pythonpath: list[str] = Field(default_factory=list, description="relative to the stack file")


class StackSpec(_Model):
    name: str = Field(pattern=NAME)
    description: str = ""
    images: dict[str, ImageSpec]
    profiles: dict[str, dict[str, Scalar]] = Field(default_factory=lambda: {"default": dict[str, Scalar]()})
    default_profile: str | None = None
    services: dict[str, ServiceSpec] = Field(min_length=1)
    proxy: ProxySpec = Field(default_factory=ProxySpec)
    links: list[str] = Field(default_factory=list)
    automation: AutomationSpec | None = None
    probes: dict[str, ProbeSpec] = Field(default_factory=dict)
    selectors: dict[str, SelectorSpec] = Field(default_factory=dict)
    load: dict[str, LoadAction] = Field(default_factory=dict)
    history: HistorySpec | None = None
    local: LocalSpec = Field(default_factory=LocalSpec)
    fresh: list[FreshCheck] = Field(default_factory=list)

    @field_validator("services")
    @classmethod
    def _service_names(cls, services: dict[str, ServiceSpec]) -> dict[str, ServiceSpec]:
        for name in services:
            if not re.match(NAME, name):
                raise ValueError(f"service name {name!r} must match {NAME}")
        return services

    def link_pairs(self) -> list[tuple[str, str]]:
        return [parse_link(text) for text in self.links]

    def profile_env(self, profile: str | None) -> dict[str, str]:
        name = profile or self.default_profile or next(iter(self.profiles))
        if name not in self.profiles:
            raise StackFileError(f"unknown profile {name!r}; the stack file declares {', '.join(self.profiles)}")
        return {k: env_text(v) for k, v in self.profiles[name].items()}


def env_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def parse_link(text: str) -> tuple[str, str]:
    match = LINK.match(text)
    if not match:
        raise ValueError(f"link {text!r} must read 'client->server'")
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class Stack:
    """A validated stack file and where it came from (paths resolve against ``root``)."""

    spec: StackSpec
    path: Path

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.spec.name


# --- loading and cross-checks -------------------------------------------------------


def _fail(doc: yamldoc.Document, loc: tuple[Any, ...], message: str) -> StackFileError:
    return StackFileError(f"{doc.where(loc)}: {field_name(loc, 'stack')}: {message}")


@functools.cache
def _translator() -> Translator:
    # probe kinds are the discriminator pydantic puts in error locations (probes.p.http_json.field)
    tags = {typing.get_args(model.model_fields["kind"].annotation)[0]: model for model in members(ProbeSpec)}
    return Translator(StackSpec, tags, "stack")


def problems(doc: yamldoc.Document, err: ValidationError) -> list[Problem]:
    """Every pydantic error of a stack file, located and worded for its author."""
    return _translator().problems(doc, err.errors(include_url=False))


def _pydantic_error(doc: yamldoc.Document, err: ValidationError) -> StackFileError:
    found = sorted(problems(doc, err))
    more = f" (and {plural(len(found) - 1, 'more problem')})" if len(found) > 1 else ""
    return StackFileError(f"{found[0]}{more}")


def cross_check(doc: yamldoc.Document, spec: StackSpec) -> None:
    """Relations pydantic cannot see: names that must exist, ports that must not clash."""
    services = spec.services
    for i, text in enumerate(spec.links):
        try:
            client, server = parse_link(text)
        except ValueError as err:
            raise _fail(doc, ("links", i), str(err)) from None
        for end in (client, server):
            if end not in services:
                raise _fail(doc, ("links", i), f"unknown service {end!r} in link {text!r}")
        if spec.proxy.service in (client, server):
            raise _fail(doc, ("links", i), f"link {text!r} touches the proxy itself")
        if client == server:
            raise _fail(doc, ("links", i), f"link {text!r} goes from a service to itself")
    if len(set(spec.link_pairs())) != len(spec.links):
        raise _fail(doc, ("links",), "a link is declared twice")
    for name, svc in services.items():
        if svc.image not in spec.images:
            raise _fail(doc, ("services", name, "image"), f"missing image {svc.image!r}: not declared under images")
        if svc.required and svc.replicas == 0:
            raise _fail(doc, ("services", name, "replicas"), f"required service {name!r} has replica count 0")
    # Two services may listen on the same port: each instance has its own network namespace (docker) or its
    # own free port (local). Only the proxy's listener range is reserved.
    for name, svc in services.items():
        if svc.port is None and svc.health.kind != "none":
            raise _fail(doc, ("services", name, "health"), f"{name!r} listens on no port: give health: {{kind: none}}")
        for server, _ in svc.depends_on.items():
            if server not in services:
                raise _fail(doc, ("services", name, "depends_on", server), f"unknown service {server!r}")
            if server == name:
                raise _fail(doc, ("services", name, "depends_on", server), f"{name!r} depends on itself")
    _no_dependency_cycle(doc, spec)
    linked = set(spec.link_pairs())
    for client, server in linked:
        if services[server].port is None:
            raise _fail(doc, ("links", spec.links.index(f"{client}->{server}") if f"{client}->{server}" in spec.links else 0),
                        f"link {client}->{server}: {server!r} listens on no port")
    for name, svc in services.items():
        for path, text in _templated(svc):
            for server in ROUTE.findall(text):
                if server not in services:
                    raise _fail(doc, ("services", name, *path), f"{{route:{server}}}: unknown service {server!r}")
                if (name, server) not in linked:
                    raise _fail(doc, ("services", name, *path), f"{{route:{server}}} needs the link {name}->{server} under links")
    if spec.proxy.service not in services:
        raise _fail(doc, ("proxy", "service"), f"unknown service {spec.proxy.service!r}")
    if services[spec.proxy.service].replicas != 1:
        raise _fail(doc, ("services", spec.proxy.service, "replicas"), "the proxy service runs exactly one replica")
    span = range(spec.proxy.listeners_from, spec.proxy.listeners_from + 1000)
    for name, svc in services.items():
        if svc.port is not None and svc.port in span:
            raise _fail(doc, ("services", name, "port"), f"port clash: {svc.port} is inside the proxy's listener range {span.start}-{span.stop - 1}")
    if spec.automation and spec.automation.service not in services:
        raise _fail(doc, ("automation", "service"), f"unknown service {spec.automation.service!r}")
    if spec.default_profile and spec.default_profile not in spec.profiles:
        raise _fail(doc, ("default_profile",), f"unknown profile {spec.default_profile!r}")
    for pname, probe in spec.probes.items():
        ref = getattr(probe, "service", None)
        if ref is not None and ref not in services:
            raise _fail(doc, ("probes", pname, "service"), f"unknown service {ref!r}")
    for i, check in enumerate(spec.fresh):
        if check.probe not in spec.probes:
            raise _fail(doc, ("fresh", i, "probe"), f"unknown probe {check.probe!r}")
    for sname, sel in spec.selectors.items():
        if sel.probe not in spec.probes:
            raise _fail(doc, ("selectors", sname, "probe"), f"unknown probe {sel.probe!r}")
        if sel.service is not None and sel.service not in services:
            raise _fail(doc, ("selectors", sname, "service"), f"unknown service {sel.service!r}")
    for part in ("listeners", "relaunches"):
        source = getattr(spec.history, part, None) if spec.history else None
        if source is not None and source.service not in services:
            raise _fail(doc, ("history", part, "service"), f"unknown service {source.service!r}")
    for aname, action in spec.load.items():
        for i, step in enumerate(action.steps):
            if step.service not in services:
                raise _fail(doc, ("load", aname, "steps", i, "service"), f"unknown service {step.service!r}")


ROUTE = re.compile(r"(?<!\{)\{route:([a-z][a-z0-9_-]*)(?::(?:host|port))?\}")


def _templated(svc: ServiceSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """Every templated string of a service, with its path (env values, command, entrypoint)."""
    found: list[tuple[tuple[str | int, ...], str]] = [(("env", k), v) for k, v in svc.env.items() if isinstance(v, str)]
    found += [(("command", i), v) for i, v in enumerate(svc.command)]
    if svc.container and svc.container.entrypoint:
        found += [(("container", "entrypoint", i), v) for i, v in enumerate(svc.container.entrypoint)]
    return found


def _no_dependency_cycle(doc: yamldoc.Document, spec: StackSpec) -> None:
    state: dict[str, int] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise _fail(doc, ("services", name, "depends_on"), f"depends_on forms a cycle: {' -> '.join((*path, name))}")
        state[name] = 1
        for server in spec.services[name].depends_on:
            visit(server, (*path, name))
        state[name] = 2

    for name in spec.services:
        visit(name, ())


def parse_stack(doc: yamldoc.Document) -> StackSpec:
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else f"a {type(doc.data).__name__}"
        raise StackFileError(f"{doc.where(())}: stack: a stack file is a mapping with services, links and images, not {what}")
    try:
        spec = StackSpec.model_validate(doc.data)
    except ValidationError as err:
        raise _pydantic_error(doc, err) from None
    cross_check(doc, spec)
    return spec


_LOADED: dict[Path, tuple[tuple[int, int, int], Stack]] = {}


def load_stack(path: str | Path) -> Stack:
    """Read and validate a stack file; raise one StackFileError on the first problem.

    An unchanged file (same inode, size and modification time) is not parsed
    again: a runner reads its stack file for the checks, the bring-up and
    every renewal of a reused stack, and parsing costs 0.1-0.5 s.
    """
    p = Path(path).resolve()
    try:
        st = p.stat()
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        key = None  # the reader names the problem
    cached = _LOADED.get(p)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    stack = Stack(spec=parse_stack(_document(lambda: yamldoc.read_document(p, "stack file"), str(p))), path=p)
    if key is not None:
        _LOADED[p] = (key, stack)
    return stack


def loads_stack(text: str, path: str = "stack.yaml") -> Stack:
    return Stack(spec=parse_stack(_document(lambda: yamldoc.parse_text(text, path), path)), path=Path(path).resolve())


def _document(read: Callable[[], yamldoc.Document], path: str) -> yamldoc.Document:
    try:
        return read()
    except yamldoc.SyntaxProblem as err:
        raise StackFileError(syntax_line(err, path)) from None


def syntax_line(err: yamldoc.SyntaxProblem, path: str) -> str:
    """``file:line:col: file: message`` (``file: file: message`` for the file as a whole), as for experiments."""
    return str(Problem(err.line, err.col, path, "file", err.message))


# --- scale ---------------------------------------------------------------------------


def parse_scale(text: str | None) -> dict[str, int]:
    """``edge=3,supervisor=4`` -> {"edge": 3, "supervisor": 4}."""
    scale: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, count = part.partition("=")
        if not sep or not count.strip().isdigit():
            raise StackFileError(f"--scale {text!r}: {part.strip()!r} must read service=count")
        scale[name.strip()] = int(count)
    return scale


def apply_scale(spec: StackSpec, scale: Mapping[str, int] | None) -> StackSpec:
    """The spec with replica counts replaced; refuses unknown services and zero for required ones."""
    if not scale:
        return spec
    services = dict(spec.services)
    for name, count in scale.items():
        if name not in services:
            raise StackFileError(f"scale: unknown service {name!r}; the stack has {', '.join(services)}")
        if count < 0:
            raise StackFileError(f"scale: {name}={count}: replica count must be >= 0")
        if count == 0 and services[name].required:
            raise StackFileError(f"scale: {name}=0: required service {name!r} needs at least one replica")
        if name == spec.proxy.service and count != 1:
            raise StackFileError(f"scale: {name}={count}: the proxy service runs exactly one replica")
        services[name] = services[name].model_copy(update={"replicas": count})
    return spec.model_copy(update={"services": services})
