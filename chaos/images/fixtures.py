"""A second offline base for the Compose fixtures: real servers from Debian packages.

The Compose projects under ``fixtures/compose/`` are written the way teams
write them: PostgreSQL, Redis and nginx in front of a small Flask app with a
worker. No registry is reachable, so their Dockerfiles build ``FROM`` this
base, made like the services base (mmdebstrap, then ``docker import``) with
the servers added. It is a separate image rather than more packages in the
services base: the services base (and every services image built on it)
keeps its tag, and only whoever runs the fixtures pays for the build.

The base gets its hash tag (``roomquake/compose-base:<inputs>``) and the
moving tag ``roomquake/compose-base:latest``, which the fixtures' Dockerfiles
name in their default ``ARG BASE``, so ``docker-compose build`` finds it too.

    python -m chaos.images.fixtures     # build it if missing; prints its reference
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chaos.engine import id_of
from chaos.images.base import BuiltImage, base_inputs_hash, build_debian_base, local_image
from chaos.images.config import BASE_PACKAGES, ImageConfig, config_from_env
from chaos.images.lock import file_lock

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

REPOSITORY = "compose-base"
MOVING_TAG = "latest"
# What the fixtures run: the database, the queue, the front, the app's libraries, curl for healthchecks.
FIXTURE_PACKAGES = (
    *BASE_PACKAGES,
    "postgresql",
    "nginx-light",
    "python3-flask",
    "gunicorn",
    "python3-psycopg2",
    "python3-redis",
    "curl",
)


def fixture_config(config: ImageConfig | None = None) -> ImageConfig:
    return dataclasses.replace(config or config_from_env(), packages=FIXTURE_PACKAGES)


def fixture_base_ref(config: ImageConfig | None = None) -> str:
    """The hash tag the fixture base has (or would have)."""
    config = fixture_config(config)
    return f"{config.repository(REPOSITORY)}:{base_inputs_hash(config)[:12]}"


def ensure_fixture_base(client: docker.DockerClient, config: ImageConfig | None = None,
                        progress: Progress = lambda _: None) -> BuiltImage:
    """The fixture base, built from Debian packages only if its tag is missing; ``:latest`` points at it."""
    config = fixture_config(config)
    started = time.monotonic()
    tag = fixture_base_ref(config)
    with file_lock(config.cache_dir / "images.lock", on_wait=progress):
        found = local_image(client, tag)
        built = found is None
        image_id = id_of(found) if found is not None else build_debian_base(client, config, tag, base_inputs_hash(config),
                                                                         progress)
        image = client.images.get(image_id)
        image.tag(config.repository(REPOSITORY), MOVING_TAG)
    return BuiltImage("base", tag, image_id, built, time.monotonic() - started, "debian")


def main() -> None:
    from chaos.engine import connect

    image = ensure_fixture_base(connect(), progress=lambda line: print(f"  {line}", file=sys.stderr))
    state = f"built in {image.seconds:.1f} s" if image.built else "up to date"
    print(f"{image.ref} ({state}); also tagged {fixture_config().repository(REPOSITORY)}:{MOVING_TAG}")


if __name__ == "__main__":
    main()
