"""Images built from a stack's build contexts (a Compose service's ``build``), offline.

The tag is a hash of what the build reads: the files Docker would send
(``.dockerignore`` applied, as the Docker SDK applies it), the Dockerfile,
the build arguments and target, and the ids of the images its ``FROM`` lines
name. An unchanged context is found, not rebuilt; a changed base image gives
a new tag. A ``FROM`` image that is not in the engine is refused before the
build with one line: nothing is ever pulled.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.engine import failure, id_of
from chaos.errors import EngineError, UsageError
from chaos.images.base import BuiltImage, local_image
from chaos.images.config import INPUTS, KIND

if TYPE_CHECKING:
    import docker

    from chaos.stack.spec import ContextImage

Progress = Callable[[str], None]

RECIPE_VERSION = "1"
REPOSITORY_PREFIX = "roomquake/ctx-"
_ARG = re.compile(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?\s*$", re.IGNORECASE)
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.") or "image"


def from_images(dockerfile_text: str, args: dict[str, str]) -> list[str]:
    """The images a Dockerfile's FROM lines name (stages it builds itself and ``scratch`` left out)."""
    defaults: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    joined = re.sub(r"\\\r?\n", " ", dockerfile_text)  # line continuations
    seen_from = False
    for line in joined.splitlines():
        arg = _ARG.match(line)
        if arg and not seen_from:
            defaults[arg.group(1)] = (arg.group(2) or "").strip("\"'")
            continue
        match = _FROM.match(line)
        if not match:
            continue
        seen_from = True
        values = {**defaults, **args}
        ref = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m.group(1), ""), match.group(1))
        if ref.lower() != "scratch" and ref not in stages and ref not in found:
            found.append(ref)
        if match.group(2):
            stages.add(match.group(2))
    return found


def _context_files(context: Path, dockerfile: str) -> list[str]:
    """What ``docker build`` sends: every file not excluded by .dockerignore (the Docker SDK's own rules)."""
    from docker.utils.build import exclude_paths

    ignore = context / ".dockerignore"
    patterns: list[str] = []
    if ignore.is_file():
        patterns = [line.strip() for line in ignore.read_text(encoding="utf-8", errors="replace").splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    return sorted(p for p in exclude_paths(str(context), patterns, dockerfile=dockerfile) if (context / p).is_file())


def context_hash(context: Path, spec: ContextImage, base_ids: dict[str, str]) -> str:
    digest = hashlib.sha256(f"recipe={RECIPE_VERSION}\n".encode())
    dockerfile = spec.dockerfile or "Dockerfile"
    for rel in _context_files(context, dockerfile):
        path = context / rel
        digest.update(rel.encode() + b"\0" + (b"x" if os.access(path, os.X_OK) else b"-"))
        digest.update(path.read_bytes() + b"\0")
    digest.update(f"dockerfile={dockerfile}\ntarget={spec.target}\n".encode())
    digest.update((context / dockerfile).read_bytes())
    for key in sorted(spec.args):
        digest.update(f"arg {key}={spec.args[key]}\n".encode())
    for ref in sorted(base_ids):
        digest.update(f"from {ref}={base_ids[ref]}\n".encode())
    return digest.hexdigest()


def ensure_context_image(client: docker.DockerClient, root: Path, stack: str, name: str, spec: ContextImage,
                         progress: Progress = lambda _: None) -> BuiltImage:
    """The image of ``spec`` (its context relative to ``root``), built only when its inputs changed."""
    import docker as docker_sdk
    import time

    started = time.monotonic()
    context = (root / spec.path).resolve()
    dockerfile = spec.dockerfile or "Dockerfile"
    where = f"stack image {name!r} (context {spec.path})"
    if not (context / dockerfile).is_file():
        raise UsageError(f"{where}: no {dockerfile} in {context}")
    bases: dict[str, str] = {}
    for ref in from_images((context / dockerfile).read_text(encoding="utf-8", errors="replace"), spec.args):
        found = local_image(client, ref)
        if found is None:
            raise UsageError(f"{where}: FROM {ref} is not in the engine, and nothing is pulled",
                             hint="build or load that image first (docker load, or roomquake's offline bases)")
        bases[ref] = id_of(found)
    inputs = context_hash(context, spec, bases)
    tag = f"{REPOSITORY_PREFIX}{_slug(stack)}-{_slug(name)}:{inputs[:12]}"
    found = local_image(client, tag)
    if found is not None:
        return BuiltImage("context", tag, id_of(found), False, time.monotonic() - started, "context")
    progress(f"building {tag} from {context}")
    lines: list[str] = []
    try:
        for chunk in client.api.build(path=str(context), dockerfile=dockerfile, tag=tag, buildargs=spec.args or None,
                                      target=spec.target, labels={KIND: "context", INPUTS: inputs}, rm=True,
                                      forcerm=True, pull=False, decode=True):
            if "error" in chunk:
                message = " ".join(str(chunk["error"]).split())
                tail = " | ".join(lines[-3:])
                raise EngineError(f"building {where} failed: {message[:300]}", hint=f"last build output: {tail}"[:400])
            text = str(chunk.get("stream", "")).strip()
            if text:
                lines.append(text)
    except docker_sdk.errors.DockerException as exc:
        raise failure(exc, f"building {where}") from exc
    image = local_image(client, tag)
    if image is None:
        raise EngineError(f"the build of {where} reported success but {tag} is missing")
    return BuiltImage("context", tag, id_of(image), True, time.monotonic() - started, "context")
