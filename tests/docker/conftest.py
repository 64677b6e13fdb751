"""Fixtures shared by docker-tier tests.

``stack_images``: the stack's images (base + services), built once per
session and cached by input hash across sessions, so a test session builds
the Debian base only the first time on a machine. Nothing is ever pulled.
``compose_base``: the fixture Compose projects' offline base, built the same way.
"""

from __future__ import annotations

import fcntl
import sys
import tempfile
import time
from pathlib import Path

import pytest

from chaos.images import ImageSet, ensure_images


IMAGES_LOCK = Path(tempfile.gettempdir()) / "roomquake-test-images.lock"


def _say(message: str) -> None:
    # Straight to the terminal: a first build takes a minute and should say why.
    print(f"[stack_images] {message}", file=sys.__stderr__, flush=True)


@pytest.fixture(scope="session")
def stack_images(docker_engine) -> ImageSet:
    """Built images for the reference stack: ``stack_images.services.ref`` runs every service."""
    started = time.monotonic()
    # pytest-xdist workers each ask for the images: one builds, the others then find them cached.
    with open(IMAGES_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        images = ensure_images(docker_engine, progress=_say)
    if images.built:
        _say(f"built {', '.join(i.ref for i in images.built)} in {time.monotonic() - started:.1f} s")
    return images


@pytest.fixture(scope="session")
def compose_base(docker_engine) -> str:
    """roomquake/compose-base (Debian's PostgreSQL, Redis, nginx, Flask), built from Debian packages once."""
    from chaos.images.fixtures import ensure_fixture_base

    with open(IMAGES_LOCK, "a") as lock:  # the compose tests and the swarm ones may both ask at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        return ensure_fixture_base(docker_engine, progress=lambda line: _say(f"compose_base: {line}")).ref
