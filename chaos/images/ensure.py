"""ensure_images: the stack's images, built only when their inputs changed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chaos.engine import disk_full, is_disk_full
from chaos.errors import EnvironmentProblem
from chaos.images.base import BuiltImage, ensure_base
from chaos.images.config import INPUTS, KIND, ImageConfig, config_from_env
from chaos.images.lock import file_lock
from chaos.images.proxy import ensure_proxy
from chaos.images.services import ensure_services
from chaos.images.wheels import ensure_wheels

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ImageSet:
    """What the stack backends run: ``services.ref`` for every service container.

    ``proxy.ref`` is the fault proxy alone (default command: its API on
    0.0.0.0:8474), for tools that start a Toxiproxy image by name.
    """

    base: BuiltImage
    services: BuiltImage
    proxy: BuiltImage
    seconds: float

    @property
    def all(self) -> list[BuiltImage]:
        return [self.base, self.services, self.proxy]

    @property
    def built(self) -> list[BuiltImage]:
        return [image for image in self.all if image.built]

    def ref(self, name: str) -> str:
        """Image reference for a stack file's image name ("services", "base" or "proxy")."""
        return {"base": self.base.ref, "services": self.services.ref, "proxy": self.proxy.ref}[name]


def ensure_images(
    client: docker.DockerClient,
    config: ImageConfig | None = None,
    progress: Progress = lambda _: None,
) -> ImageSet:
    """Build whatever of base, services and proxy is missing; idempotent and safe to call concurrently.

    The lock is per cache folder: two processes sharing it build once, the
    second finds the tags present and returns at once.
    """
    config = config or config_from_env()
    config.check_sources()
    started = time.monotonic()
    try:
        with file_lock(config.cache_dir / "images.lock", on_wait=progress):
            base = ensure_base(client, config, progress)
            wheels = ensure_wheels(config, progress)
            services = ensure_services(client, config, base, wheels, progress)
            proxy = ensure_proxy(client, config, services, progress)
    except OSError as exc:  # staging, caching: our own file writes
        if is_disk_full(exc):
            raise disk_full("preparing images", str(config.cache_dir)) from exc
        raise EnvironmentProblem(f"image build: {exc.strerror or exc} ({exc.filename or config.cache_dir})") from exc
    return ImageSet(base=base, services=services, proxy=proxy, seconds=time.monotonic() - started)


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    kind: str
    id: str
    size_mb: float
    created: str
    inputs: str


def list_images(client: docker.DockerClient) -> list[ImageInfo]:
    """Every image roomquake built (labelled io.roomquake.image), newest first."""
    import docker

    from chaos.engine import failure

    try:
        images = client.images.list(filters={"label": KIND})
    except docker.errors.DockerException as exc:
        raise failure(exc, "listing images") from exc
    found: list[ImageInfo] = []
    for image in images:
        for ref in image.tags or ["<untagged>"]:
            found.append(
                ImageInfo(
                    ref=ref,
                    kind=image.labels.get(KIND, "?"),
                    id=image.short_id.removeprefix("sha256:"),
                    size_mb=image.attrs.get("Size", 0) / 1e6,
                    created=str(image.attrs.get("Created", ""))[:19].replace("T", " "),
                    inputs=image.labels.get(INPUTS, ""),
                )
            )
    return sorted(found, key=lambda info: info.created, reverse=True)
