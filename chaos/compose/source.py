"""Reading a Compose project: its files, variables, format version, overrides and ``extends``.

Every file is read by ``chaos.yamldoc`` (the project's one hardened reader;
Compose's anchors, aliases and ``<<`` merge keys are expanded within its
limits), every string value is interpolated, and the result is one mapping
of services as docker-compose 1.29 would merge them. Each service remembers
where its keys came from, so a later problem is located at
``file:line:col`` of the file that said it.

Formats: version 2.x and 3.x files (``services:``), files with no version
and a ``services:`` key (the Compose specification), and the legacy format
with no version and services at the top level.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos import yamldoc
from chaos.compose.variables import Interpolator, VariableError, read_env_file
from chaos.errors import UsageError
from chaos.problems import field_name, one_line

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yml",
                  "docker-compose.override.yaml")
TOP_LEVEL = {"version", "services", "networks", "volumes", "secrets", "configs", "name"}
# How keys of a service combine when a later file (an override) sets them again (docker-compose's merge rules).
MERGED_MAPPINGS = {"environment", "labels", "healthcheck", "deploy", "build", "logging", "extra_hosts", "sysctls",
                   "ulimits", "depends_on", "networks", "args"}
APPENDED_LISTS = {"ports", "expose", "external_links", "dns", "dns_search", "cap_add", "cap_drop", "devices",
                  "env_file", "tmpfs", "security_opt", "links", "volumes_from"}


class ComposeFileError(UsageError):
    """The Compose file cannot be imported; the message names file:line:col and the field."""


@dataclass(frozen=True)
class Origin:
    """Where a service's key was read: the document and the path of the service in it."""

    doc: yamldoc.Document
    path: tuple[str | int, ...]


@dataclass
class Project:
    name: str
    directory: Path
    files: list[Path]
    services: dict[str, dict[str, Any]]
    origins: dict[str, list[Origin]]  # service -> where it was declared (later files last)
    versions: list[str]
    unset_variables: set[str] = field(default_factory=set)
    top_level: dict[str, Any] = field(default_factory=dict)  # networks, volumes, secrets (merged)

    def where(self, service: str, *path: str | int) -> str:
        """``file:line:col`` of the deepest node of ``services.<service>.<path>`` in the last file that has it."""
        for origin in reversed(self.origins.get(service, [])):
            full = (*origin.path, *path)
            for cut in range(len(full), len(origin.path) - 1, -1):
                if full[:cut] in origin.doc.positions.values:
                    return origin.doc.where(full[:cut])
        return str(self.files[0])

    def fail(self, service: str, path: tuple[str | int, ...], message: str) -> ComposeFileError:
        return ComposeFileError(one_line(f"{self.where(service, *path)}: {field_name(('services', service, *path), 'compose')}: {message}"))


def find_files(directory: Path) -> list[Path]:
    """The files docker-compose reads in a folder by default: the first Compose file found, then its override."""
    for name in DEFAULT_FILES:
        if (directory / name).is_file():
            found = [directory / name]
            for override in OVERRIDE_FILES:
                if (directory / override).is_file():
                    found.append(directory / override)
                    break
            return found
    raise ComposeFileError(f"{directory}: no Compose file here (looked for {', '.join(DEFAULT_FILES)})")


def project_name(directory: Path, given: str | None = None, environ: dict[str, str] | None = None) -> str:
    """As docker-compose 1.29 names a project: -p, then COMPOSE_PROJECT_NAME, then the folder, lower-case alphanumerics."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    raw = given or env.get("COMPOSE_PROJECT_NAME") or directory.resolve().name
    return re.sub(r"[^-_a-z0-9]", "", raw.lower()) or "default"


def _interpolate(value: Any, fill: Interpolator, doc: yamldoc.Document, path: tuple[str | int, ...]) -> Any:
    if isinstance(value, str):
        try:
            return fill(value)
        except VariableError as err:
            raise ComposeFileError(one_line(f"{doc.where(path)}: {field_name(path, 'compose')}: {err}")) from None
    if isinstance(value, dict):
        return {k: _interpolate(v, fill, doc, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, fill, doc, (*path, i)) for i, v in enumerate(value)]
    return value


def _read(path: Path, fill: Interpolator) -> tuple[yamldoc.Document, dict[str, Any], str]:
    try:
        doc = yamldoc.read_document(path, "Compose file", aliases=True)
    except yamldoc.SyntaxProblem as err:
        where = f"{path}:{err.line}:{err.col}" if err.line else str(path)
        raise ComposeFileError(one_line(f"{where}: file: {err.message}")) from None
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else f"a {type(doc.data).__name__}"
        raise ComposeFileError(f"{doc.where(())}: compose: a Compose file is a mapping with services, not {what}")
    data = doc.data
    version = data.get("version")
    if version is not None and not isinstance(version, (str, int, float)):
        raise ComposeFileError(f"{doc.where(('version',))}: compose.version: a version is text such as \"3.8\"")
    version_text = str(version) if version is not None else ""
    if version_text and not re.fullmatch(r"[23](\.\d+)?", version_text):
        raise ComposeFileError(f"{doc.where(('version',))}: compose.version: {version_text!r} is not a version "
                               "docker-compose 1.29 reads (2.x or 3.x, or none)")
    if "services" not in data and not version_text:
        # The legacy format: services at the top level. Keys that are not mappings cannot be services.
        services = data
        version_text = "1"
        data = {"services": services}
        doc = yamldoc.Document(doc.path, data, _shift(doc.positions))
    else:
        unknown = [k for k in data if k not in TOP_LEVEL and not str(k).startswith("x-")]
        if unknown:
            raise ComposeFileError(f"{doc.where((unknown[0],))}: compose.{unknown[0]}: unknown top-level key "
                                   f"(a Compose file has {', '.join(sorted(TOP_LEVEL))} and x- extensions)")
        version_text = version_text or "spec"
    services = data.get("services") or {}
    if not isinstance(services, dict):
        raise ComposeFileError(f"{doc.where(('services',))}: compose.services: a mapping of service names to services")
    for name, service in services.items():
        if not isinstance(service, dict):
            raise ComposeFileError(f"{doc.where(('services', name))}: compose.services.{name}: a service is a mapping "
                                   f"(image, build, command, ...)")
    data = _interpolate({k: v for k, v in data.items() if not str(k).startswith("x-")}, fill, doc, ())
    return doc, data, version_text


def _shift(positions: yamldoc.Positions) -> yamldoc.Positions:
    """Positions of a legacy file as if its services sat under ``services:``."""
    shifted = yamldoc.Positions()
    shifted.values = {("services", *path): where for path, where in positions.values.items()}
    shifted.keys = {("services", *path): where for path, where in positions.keys.items()}
    shifted.values[("services",)] = positions.values.get((), (1, 1))
    return shifted


def merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """An override on a service, by docker-compose's rules (mappings merge, some lists append, the rest replace)."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if key in MERGED_MAPPINGS and isinstance(old, (dict, list)) and isinstance(value, (dict, list)):
            out[key] = {**as_mapping(old), **as_mapping(value)}
        elif key in APPENDED_LISTS and isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]
        elif key == "volumes" and isinstance(old, list) and isinstance(value, list):
            targets = {_volume_target(v): v for v in old}
            targets.update({_volume_target(v): v for v in value})
            out[key] = list(targets.values())
        else:
            out[key] = value
    return out


def as_mapping(value: Any) -> dict[str, Any]:
    """``[A=1, B]`` or ``[db, cache]`` or a mapping -> a mapping (list entries without ``=`` map to None)."""
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value:
        text = str(item)
        key, sep, rest = text.partition("=")
        out[key] = rest if sep else None
    return out


def _volume_target(volume: Any) -> str:
    if isinstance(volume, dict):
        return str(volume.get("target", ""))
    parts = str(volume).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _extend(name: str, services: dict[str, dict[str, Any]], directory: Path, fill: Interpolator,
            origins: dict[str, list[Origin]], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A service with its ``extends`` applied (same file or another), as docker-compose does."""
    service = services[name]
    spec = service.get("extends")
    if spec is None:
        return service
    where = origins[name][-1]
    if name in seen:
        raise ComposeFileError(f"{where.doc.where((*where.path, 'extends'))}: compose.services.{name}.extends: "
                               f"extends forms a cycle: {' -> '.join((*seen, name))}")
    if isinstance(spec, str):
        spec = {"service": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("service"), str):
        raise ComposeFileError(f"{where.doc.where((*where.path, 'extends'))}: compose.services.{name}.extends: "
                               "give {service: NAME} and optionally file: PATH")
    if spec.get("file"):
        other = (directory / str(spec["file"])).resolve()
        doc, data, _ = _read(other, fill)
        pool = data.get("services") or {}
        other_origins = {k: [Origin(doc, ("services", k))] for k in pool}
        if spec["service"] not in pool:
            raise ComposeFileError(f"{where.doc.where((*where.path, 'extends'))}: compose.services.{name}.extends: "
                                   f"no service {spec['service']!r} in {other}")
        parent = _extend(spec["service"], pool, other.parent, fill, other_origins, (*seen, name))
    else:
        if spec["service"] not in services:
            raise ComposeFileError(f"{where.doc.where((*where.path, 'extends'))}: compose.services.{name}.extends: "
                                   f"no service {spec['service']!r} in this project")
        parent = _extend(spec["service"], services, directory, fill, origins, (*seen, name))
    inherited = {k: v for k, v in parent.items() if k not in ("depends_on", "links", "volumes_from", "extends")}
    return merge_service(inherited, {k: v for k, v in service.items() if k != "extends"})


def load_project(files: list[Path], name: str | None = None, env_file: Path | None = None,
                 environ: dict[str, str] | None = None) -> Project:
    """Read, interpolate and merge the Compose files (the first one's folder is the project's)."""
    environ = dict(os.environ if environ is None else environ)
    files = [Path(f) for f in files]
    directory = files[0].resolve().parent
    dotenv = env_file or directory / ".env"
    values: dict[str, str] = {}
    if dotenv.is_file():
        try:
            values.update({k: v for k, v in read_env_file(dotenv).items() if v is not None})
        except VariableError as err:
            raise ComposeFileError(f"{dotenv}:{err.line}:1: env file: {err}" if err.line else f"{dotenv}: env file: {err}") from None
    elif env_file is not None:
        raise ComposeFileError(f"{env_file}: env file: no such file")
    values.update(environ)  # the shell's variables win over .env, as in docker-compose
    fill = Interpolator(values)
    services: dict[str, dict[str, Any]] = {}
    origins: dict[str, list[Origin]] = {}
    versions: list[str] = []
    top: dict[str, Any] = {}
    for path in files:
        doc, data, version = _read(path, fill)
        versions.append(version)
        for key in ("networks", "volumes", "secrets"):
            if isinstance(data.get(key), dict):
                top.setdefault(key, {}).update(data[key])
        for svc_name, svc in (data.get("services") or {}).items():
            services[svc_name] = merge_service(services[svc_name], svc) if svc_name in services else dict(svc)
            origins.setdefault(svc_name, []).append(Origin(doc, ("services", svc_name)))
    majors = {v.split(".")[0] for v in versions if v != "spec"}
    if len(majors) > 1:
        raise ComposeFileError(f"{files[-1]}: compose.version: the files mix versions {', '.join(sorted(set(versions)))}; "
                               "docker-compose refuses that too")
    services = {n: _extend(n, services, directory, fill, origins) for n in services}
    project = Project(name=project_name(directory, name, environ), directory=directory, files=files,
                      services=services, origins=origins, versions=versions, unset_variables=fill.unset, top_level=top)
    if not services:
        raise ComposeFileError(f"{files[0]}: compose.services: no services to import")
    return project
