"""Where the files roomquake ships beside its code are: the reference stack, its services, the experiments.

In an installed wheel they are package data under ``chaos/_shipped/`` (setup.py
copies them there); in a checkout, or an editable install of one, they are the
repository's own ``docker/`` and ``experiments/``. Either way ``root()`` is a
folder laid out like the repository:

    docker/stack.yaml  docker/Dockerfile.*  docker/audioroom/  experiments/
    constraints.txt  pyproject.toml
"""

from __future__ import annotations

import functools
from pathlib import Path

from chaos.errors import EnvironmentProblem

PACKAGE = Path(__file__).resolve().parent  # the chaos package itself
PACKAGED = PACKAGE / "_shipped"
CHECKOUT = PACKAGE.parent
REFERENCE_STACK = "audio-room"  # the name in docker/stack.yaml


@functools.cache
def root() -> Path:
    """The folder holding docker/ and experiments/ (the wheel's package data, else the checkout)."""
    for candidate in (PACKAGED, CHECKOUT):
        if (candidate / "docker" / "stack.yaml").is_file():
            return candidate
    raise EnvironmentProblem(
        f"roomquake's shipped files are missing (no docker/stack.yaml in {PACKAGED} nor in {CHECKOUT})",
        hint="reinstall roomquake from its wheel, or work in a checkout",
    )


def stack_file() -> Path:
    """The reference stack's file (``stack: audio-room``)."""
    return root() / "docker" / "stack.yaml"


def experiments_dir() -> Path:
    return root() / "experiments"


def experiment_files() -> list[Path]:
    return sorted(p for p in experiments_dir().iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())
