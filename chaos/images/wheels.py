"""Runtime wheels for the services image, downloaded on the host and cached.

Build containers cannot reach PyPI (and nothing may be pulled at test time),
so the host downloads manylinux wheels for the image's Python once; the image
installs them with ``--no-index``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos.engine import disk_full
from chaos.errors import EnvironmentProblem
from chaos.images.config import ImageConfig
from chaos.images.hashing import combine, file_sha256

# pip judges dependency markers by the host's Python (3.11.7 here), not the
# image's (Debian bookworm: 3.11.2), so dependencies behind such markers are
# named by hand: redis needs async-timeout below Python 3.11.3.
IMAGE_EXTRAS = ("async-timeout==5.0.1",)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WheelSet:
    directory: Path
    digest: str  # hash of the wheel files' names and contents
    files: tuple[str, ...]


def runtime_requirements(config: ImageConfig) -> list[str]:
    """roomquake's runtime dependencies as pyproject.toml declares them, plus IMAGE_EXTRAS."""
    with config.pyproject.open("rb") as handle:
        project = tomllib.load(handle)["project"]
    return [*project.get("dependencies", []), *IMAGE_EXTRAS]


def wheels_key(config: ImageConfig) -> str:
    """Hash of what decides the wheel set: requirements, pins, target platform."""
    return combine(
        [
            ("requirements", json.dumps(runtime_requirements(config))),
            ("constraints", config.constraints.read_text()),
            ("python", config.python_version),
            ("platforms", ",".join(config.platforms)),
        ]
    )


def _pip_download_command(config: ImageConfig, dest: Path) -> list[str]:
    command = [
        sys.executable, "-m", "pip", "download",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--only-binary=:all:",
        "--python-version", config.python_version,
        "--implementation", "cp",
        "--abi", "cp" + config.python_version.replace(".", ""),
        "-c", str(config.constraints),
        "-d", str(dest),
    ]  # fmt: skip
    for platform in config.platforms:
        command += ["--platform", platform]
    return command + runtime_requirements(config)


def _load(directory: Path) -> WheelSet | None:
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return WheelSet(directory=directory, digest=manifest["digest"], files=tuple(manifest["files"]))


def cached_wheels(config: ImageConfig) -> WheelSet | None:
    """The wheel set for this configuration if it is already downloaded."""
    return _load(config.cache_dir / "wheels" / wheels_key(config)[:16])


def ensure_wheels(config: ImageConfig, progress: Progress = lambda _: None) -> WheelSet:
    """The cached wheel set, downloading it first if needed (needs PyPI once)."""
    found = cached_wheels(config)
    if found is not None:
        return found
    final = config.cache_dir / "wheels" / wheels_key(config)[:16]
    final.parent.mkdir(parents=True, exist_ok=True)
    progress(f"downloading runtime wheels for Python {config.python_version} into {final}")
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".download-") as tmp:
        staging = Path(tmp, "wheels")
        result = subprocess.run(
            _pip_download_command(config, staging),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            if "no space left on device" in output.lower():
                raise disk_full("downloading wheels", str(final.parent))
            last = output.splitlines()[-1] if output else f"exit {result.returncode}"
            raise EnvironmentProblem(
                f"could not download the runtime wheels for the services image: {last}",
                hint="the first build needs PyPI (pip download); later builds use the cache "
                f"in {final.parent}",
            )
        files = sorted(p.name for p in staging.glob("*.whl"))
        digest = combine((name, file_sha256(staging / name)) for name in files)
        (staging / "manifest.json").write_text(json.dumps({"digest": digest, "files": files}, indent=1))
        try:
            os.rename(staging, final)
        except OSError:
            # Another process (without our lock, e.g. another cache user) won the race.
            if _load(final) is None:
                shutil.rmtree(final, ignore_errors=True)
                os.rename(staging, final)
    loaded = _load(final)
    assert loaded is not None
    return loaded
