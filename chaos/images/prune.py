"""Remove image tags that no longer match the checkout's inputs.

Every edit of chaos/ or docker/audioroom gives a new services tag; the old
ones share all but their top layers, but they pile up. Pruning keeps the
current tags, anything a container (of any run) uses, and anything younger
than a grace period, because another process may be about to start it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from chaos.engine import failure, id_of
from chaos.images.base import BuiltImage, base_inputs_hash, local_image
from chaos.images.config import KIND, ImageConfig
from chaos.images.proxy import proxy_ref
from chaos.images.services import context_layout, services_inputs_hash
from chaos.images.wheels import cached_wheels

if TYPE_CHECKING:
    import docker
    from docker.models.images import Image


@dataclass(frozen=True)
class PruneResult:
    removed: list[str]
    kept_current: list[str]
    kept_in_use: list[str]
    kept_recent: list[str]


def current_refs(client: docker.DockerClient, config: ImageConfig) -> set[str]:
    """The refs ensure_images would return now, found without building anything."""
    refs: set[str] = set()
    base_ref = config.base_image if config.base_image and local_image(client, config.base_image) else None
    base_ref = base_ref or f"{config.repository('base')}:{base_inputs_hash(config)[:12]}"
    base = local_image(client, base_ref)
    refs.add(base_ref)
    wheels = cached_wheels(config)
    if base is not None and wheels is not None:
        built = BuiltImage("base", base_ref, id_of(base), False, 0.0, "")
        inputs = services_inputs_hash(built, wheels, config.services_dockerfile, context_layout(config))
        services_ref = f"{config.repository('services')}:{inputs[:12]}"
        refs.add(services_ref)
        services = local_image(client, services_ref)
        if services is not None:
            refs.add(proxy_ref(config, BuiltImage("services", services_ref, id_of(services), False, 0.0, "")))
    return refs


def _created(image: Image) -> float:
    text = str(image.attrs.get("Created", ""))
    try:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return time.time()  # unknown age: treat as new, keep it


def prune_images(
    client: docker.DockerClient, config: ImageConfig, *, grace_s: float = 3600.0, dry_run: bool = False
) -> PruneResult:
    import docker

    current = current_refs(client, config)
    try:
        in_use = {c.get("ImageID", "") for c in client.api.containers(all=True)}  # no per-container inspect: no race
        images = client.images.list(filters={"label": KIND})
    except docker.errors.DockerException as exc:
        raise failure(exc, "listing images and containers") from exc
    result = PruneResult([], [], [], [])
    ours = tuple(f"{config.repository(kind)}:" for kind in ("proxy", "services", "base"))
    # Children before parents (proxy, services, base): an image cannot go while images built on it remain.
    order = {"proxy": 0, "services": 1}
    for image in sorted(images, key=lambda i: order.get(i.labels.get(KIND, ""), 2)):
        for tag in image.tags:
            if not tag.startswith(ours):
                continue
            if tag in current:
                result.kept_current.append(tag)
            elif image.id in in_use:
                result.kept_in_use.append(tag)
            elif time.time() - _created(image) < grace_s:
                result.kept_recent.append(tag)
            else:
                if not dry_run:
                    try:
                        client.images.remove(tag)
                    except docker.errors.ImageNotFound:
                        pass
                    except docker.errors.APIError:
                        result.kept_in_use.append(tag)  # a child image or a container holds it
                        continue
                result.removed.append(tag)
    return result
