"""Build step: the files roomquake ships beside its code travel in the wheel.

The reference stack (docker/stack.yaml, the Dockerfiles, the audio-room
services in docker/audioroom) and the shipped experiments keep their home in
the repository; building a wheel copies them under ``chaos/_shipped/`` as
package data, together with constraints.txt and pyproject.toml (the inputs
of the images' wheel set). ``chaos.shipped`` finds them there, or in the
checkout for an editable install. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Globs relative to the repository, copied to the same relative path under chaos/_shipped.
SHIPPED = (
    "docker/stack.yaml",
    "docker/Dockerfile.*",
    "docker/audioroom/**/*",
    "experiments/*.yaml",
    "experiments/README.md",
    "constraints.txt",
    "pyproject.toml",
)
SKIPPED_PARTS = {"__pycache__"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", "~", ".swp")


def shipped_files() -> list[Path]:
    found: set[Path] = set()
    for pattern in SHIPPED:
        for path in HERE.glob(pattern):
            rel = path.relative_to(HERE)
            if path.is_file() and not SKIPPED_PARTS & set(rel.parts) and not path.name.endswith(SKIPPED_SUFFIXES):
                found.add(rel)
    return sorted(found)


class BuildWithShipped(build_py):
    """build_py, then the shipped files under chaos/_shipped (not for editable installs: the checkout has them)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "chaos" / "_shipped"
        for rel in shipped_files():
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(HERE / rel, dest)


setup(cmdclass={"build_py": BuildWithShipped})
