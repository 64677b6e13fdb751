"""The services image: docker/Dockerfile.services on the base, from a staged context.

The build context is staged (copied) rather than the checkout itself: the
image gets exactly the files that were hashed, never a .venv or a cache,
and an edit made during the build cannot slip in half-way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.engine import disk_full, failure, id_of
from chaos.errors import EngineError
from chaos.images.base import BuiltImage, local_image
from chaos.images.config import BASE, INPUTS, KIND, ImageConfig
from chaos.images.hashing import combine, file_sha256, hash_tree, stage_tree
from chaos.images.wheels import WheelSet

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

RECIPE_VERSION = "1"  # bump when the staging layout or build options change
CONTEXT_DOCKERFILE = "docker/Dockerfile.services"


def context_layout(config: ImageConfig) -> dict[str, Path]:
    """Path in the build context -> source folder in the checkout."""
    return {"chaos": config.sources["chaos"], "docker/audioroom": config.sources["audioroom"]}


def services_inputs_hash(base: BuiltImage, wheels: WheelSet, dockerfile: Path, sources: dict[str, Path]) -> str:
    return combine(
        [
            ("recipe", RECIPE_VERSION),
            ("dockerfile", file_sha256(dockerfile)),
            ("base", base.id),
            ("wheels", wheels.digest),
            *((f"tree:{name}", hash_tree(path)) for name, path in sorted(sources.items())),
        ]
    )


def stage_context(config: ImageConfig, wheels: WheelSet, dest: Path) -> None:
    (dest / "wheels").mkdir(parents=True)
    for name in wheels.files:
        try:
            os.link(wheels.directory / name, dest / "wheels" / name)
        except OSError:  # another filesystem
            shutil.copy2(wheels.directory / name, dest / "wheels" / name)
    for name, source in context_layout(config).items():
        stage_tree(source, dest / name)
    (dest / "docker").mkdir(exist_ok=True)
    shutil.copy2(config.services_dockerfile, dest / CONTEXT_DOCKERFILE)


def ensure_services(
    client: docker.DockerClient,
    config: ImageConfig,
    base: BuiltImage,
    wheels: WheelSet,
    progress: Progress = lambda _: None,
) -> BuiltImage:
    """The services image for the current sources; built only if its tag is missing."""
    started = time.monotonic()
    inputs = services_inputs_hash(base, wheels, config.services_dockerfile, context_layout(config))
    tag = f"{config.repository('services')}:{inputs[:12]}"
    found = local_image(client, tag)
    if found is not None:
        return BuiltImage("services", tag, id_of(found), False, time.monotonic() - started, "dockerfile")
    with tempfile.TemporaryDirectory(prefix="roomquake-context-", dir=config.cache_dir) as tmp:
        context = Path(tmp)
        stage_context(config, wheels, context)
        # Hash what was staged, so the tag names exactly what the image holds
        # even if a source file changed since the check above.
        inputs = services_inputs_hash(
            base, wheels, context / CONTEXT_DOCKERFILE, {k: context / k for k in context_layout(config)}
        )
        tag = f"{config.repository('services')}:{inputs[:12]}"
        found = local_image(client, tag)
        if found is not None:  # the sources moved back to a state already built
            return BuiltImage("services", tag, id_of(found), False, time.monotonic() - started, "dockerfile")
        progress(f"building {tag} on {base.ref}")
        image_id = build_image(client, context, CONTEXT_DOCKERFILE, tag, "services", base, inputs, progress)
    return BuiltImage("services", tag, image_id, True, time.monotonic() - started, "dockerfile")


def build_image(
    client: docker.DockerClient,
    context: Path,
    dockerfile: str,
    tag: str,
    kind: str,
    base: BuiltImage,
    inputs: str,
    progress: Progress,
) -> str:
    """``docker build`` a staged context FROM ``base`` (never pulling), labelled with its kind and inputs; its id."""
    import docker

    labels = {KIND: kind, INPUTS: inputs, BASE: base.ref}
    lines: list[str] = []
    try:
        for chunk in client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs={"BASE": base.ref},
            labels=labels,
            rm=True,
            forcerm=True,  # a failed legacy build leaves step containers behind otherwise
            pull=False,
            decode=True,
        ):
            if "error" in chunk:
                message = str(chunk.get("error", "")).strip()
                if "no space left on device" in message.lower():
                    raise disk_full(f"building the {kind} image", "the Docker engine's data root")
                tail = " | ".join(line for line in lines[-3:] if line)
                if len(message) > 200:  # a failed RUN repeats its whole command line
                    message = message[:197] + "..."
                raise EngineError(f"building {tag} failed: {message}", hint=f"last build output: {tail}"[:400])
            text = str(chunk.get("stream", "")).strip()
            if text:
                lines.append(text)
                if text.startswith("Step "):
                    progress(text if len(text) <= 100 else text[:97] + "...")
    except docker.errors.DockerException as exc:
        raise failure(exc, f"building {tag}") from exc
    image = local_image(client, tag)
    if image is None:
        raise EngineError(f"the build reported success but {tag} is missing")
    return id_of(image)
