"""The proxy image: the services image whose default command is the fault proxy.

Toxiproxy tooling that starts "a Toxiproxy image" by name (testcontainers'
ToxiProxyContainer, compose files) runs the image's default command and
expects the API on port 8474 of the container. docker/Dockerfile.proxy gives
them that on top of the services image: metadata only, built in a second.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.engine import id_of
from chaos.images.base import BuiltImage, local_image
from chaos.images.config import ImageConfig
from chaos.images.hashing import combine, file_sha256
from chaos.images.services import build_image

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

RECIPE_VERSION = "1"  # bump when the staging layout or build options change
CONTEXT_DOCKERFILE = "Dockerfile.proxy"


def proxy_inputs_hash(services: BuiltImage, dockerfile: Path) -> str:
    return combine([("recipe", RECIPE_VERSION), ("dockerfile", file_sha256(dockerfile)), ("services", services.id)])


def proxy_ref(config: ImageConfig, services: BuiltImage) -> str:
    """The tag the proxy image has (or would have) on top of ``services``."""
    return f"{config.repository('proxy')}:{proxy_inputs_hash(services, config.proxy_dockerfile)[:12]}"


def ensure_proxy(
    client: docker.DockerClient,
    config: ImageConfig,
    services: BuiltImage,
    progress: Progress = lambda _: None,
) -> BuiltImage:
    """The proxy image on the current services image; built only if its tag is missing."""
    started = time.monotonic()
    tag = proxy_ref(config, services)
    found = local_image(client, tag)
    if found is not None:
        return BuiltImage("proxy", tag, id_of(found), False, time.monotonic() - started, "dockerfile")
    with tempfile.TemporaryDirectory(prefix="roomquake-proxy-context-", dir=config.cache_dir) as tmp:
        context = Path(tmp)
        shutil.copy2(config.proxy_dockerfile, context / CONTEXT_DOCKERFILE)
        # Hash the staged copy, so the tag names exactly what was built.
        inputs = proxy_inputs_hash(services, context / CONTEXT_DOCKERFILE)
        tag = f"{config.repository('proxy')}:{inputs[:12]}"
        progress(f"building {tag} on {services.ref}")
        image_id = build_image(client, context, CONTEXT_DOCKERFILE, tag, "proxy", services, inputs, progress)
    return BuiltImage("proxy", tag, image_id, True, time.monotonic() - started, "dockerfile")
