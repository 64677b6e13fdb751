"""Where image inputs come from and how images are named.

Everything that decides what an image contains lives here, so the hash of an
image's inputs can be computed from one object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from chaos.errors import UsageError

# Image labels (images are not run resources: `roomquake clean` never touches them).
KIND = "io.roomquake.image"  # "base" | "services" | "proxy"
INPUTS = "io.roomquake.inputs"  # full hash of the image's inputs
BASE = "io.roomquake.base"  # for services and proxy: the image reference it was built on

# Packages of the base image built from Debian: the Python runtime, Redis for
# the state service, and the tools network faults need inside a container.
BASE_PACKAGES = (
    "python3",
    "python3-venv",
    "redis-server",
    "iproute2",
    "iptables",
    "procps",
    "ca-certificates",
)
# Documentation, manuals and translations are dead weight in a service image.
BASE_TRIM = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)


def _default_root() -> Path:
    # docker/, constraints.txt and pyproject.toml: the installed package's own copies, or the checkout's.
    from chaos import shipped

    return shipped.root()


def _default_cache() -> Path:
    if os.environ.get("ROOMQUAKE_CACHE_DIR"):
        return Path(os.environ["ROOMQUAKE_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "roomquake"


@dataclass(frozen=True)
class ImageConfig:
    """Inputs and names of the stack's images.

    ``base_image``: a Python image to build on (ROOMQUAKE_BASE_IMAGE, e.g.
    python:3.11-slim), used when present locally, or pulled when ``pull`` is
    set (ROOMQUAKE_PULL=1); without one, the base is built from Debian.
    ``prefix`` names the repositories (``<prefix>/base``, ``<prefix>/services``),
    so a benchmark can build from nothing without touching the real images.
    """

    root: Path = field(default_factory=_default_root)
    cache_dir: Path = field(default_factory=_default_cache)
    prefix: str = "roomquake"
    base_image: str | None = field(default_factory=lambda: os.environ.get("ROOMQUAKE_BASE_IMAGE") or None)
    pull: bool = field(default_factory=lambda: os.environ.get("ROOMQUAKE_PULL") == "1")
    suite: str = "bookworm"
    packages: tuple[str, ...] = BASE_PACKAGES
    trim: tuple[str, ...] = BASE_TRIM
    python_version: str = "3.11"
    platforms: tuple[str, ...] = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")

    @property
    def docker_dir(self) -> Path:
        return self.root / "docker"

    @property
    def services_dockerfile(self) -> Path:
        return self.docker_dir / "Dockerfile.services"

    @property
    def proxy_dockerfile(self) -> Path:
        return self.docker_dir / "Dockerfile.proxy"

    @property
    def chaos_dir(self) -> Path:
        """The toolkit's package: the checkout's chaos/, or the installed package (its root holds no chaos/)."""
        from chaos import shipped

        return self.root / "chaos" if (self.root / "chaos").is_dir() else shipped.PACKAGE

    @property
    def sources(self) -> dict[str, Path]:
        """Folders copied into the services image, by their name in the build context."""
        return {"chaos": self.chaos_dir, "audioroom": self.docker_dir / "audioroom"}

    @property
    def constraints(self) -> Path:
        return self.root / "constraints.txt"

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"

    def repository(self, kind: str) -> str:
        return f"{self.prefix}/{kind}"

    def check_sources(self) -> None:
        """One clear line when the checkout the images are built from is incomplete."""
        inputs = (self.services_dockerfile, self.proxy_dockerfile, self.constraints, self.pyproject)
        for path in (*inputs, *self.sources.values()):
            if not path.exists():
                raise UsageError(
                    f"image input missing: {path}",
                    hint="build images from a roomquake checkout (set ROOMQUAKE_ROOT to one)",
                )


def config_from_env() -> ImageConfig:
    """The configuration, with ROOMQUAKE_ROOT (checkout) and ROOMQUAKE_IMAGE_PREFIX applied."""
    config = ImageConfig()
    if os.environ.get("ROOMQUAKE_ROOT"):
        config = replace(config, root=Path(os.environ["ROOMQUAKE_ROOT"]).resolve())
    if os.environ.get("ROOMQUAKE_IMAGE_PREFIX"):
        config = replace(config, prefix=os.environ["ROOMQUAKE_IMAGE_PREFIX"])
    return config
