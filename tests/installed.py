"""roomquake as a user gets it: a wheel built from this tree, installed into a fresh
virtualenv outside the repository, offline.

The wheel is built from a copy of the files a source distribution carries (so
nothing else of the checkout can leak in), with build isolation fed from a
local wheelhouse; the virtualenv is installed from the same wheelhouse with
``--no-index``. The wheelhouse (runtime dependencies pinned by
constraints.txt, plus the build backend) is downloaded once with
``pip download`` into the cache ($ROOMQUAKE_CACHE_DIR or ~/.cache/roomquake)
and reused. Loaded by tests/conftest.py, which exposes the session fixture
``installed_roomquake``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the wheel is built from: the files a source distribution carries (MANIFEST.in, setup.py).
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "constraints.txt", "chaos", "docker", "experiments")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")


def _cache() -> Path:
    base = os.environ.get("ROOMQUAKE_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "roomquake"
    return Path(base)


def _pip(*args: str, python: str = sys.executable, timeout: float = 600) -> None:
    command = [python, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        pytest.fail(f"{' '.join(command[:6])} ... failed ({done.returncode}):\n{tail}")


def wheelhouse() -> Path:
    """Wheels of roomquake's pinned runtime dependencies and of its build backend (downloaded once)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    key = hashlib.sha256(("\n".join(wanted) + (ROOT / "constraints.txt").read_text()).encode()).hexdigest()[:16]
    folder = _cache() / "wheelhouse" / key
    if (folder / ".complete").is_file():
        return folder
    staging = folder.with_name(folder.name + f".part-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    _pip("download", "-q", "-d", str(staging), "-c", str(ROOT / "constraints.txt"), *wanted)
    (staging / ".complete").write_text("\n".join(wanted))
    try:
        staging.rename(folder)
    except OSError:  # another session finished first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    wheelhouse: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        """The user's environment with the venv first on PATH and nothing pointing back at the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "ROOMQUAKE_ROOT")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env.update(extra)
        return env

    def run(self, *argv: str, cwd: Path, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / argv[0]), *argv[1:]], cwd=cwd, env=self.env(**extra), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def install(base: Path) -> Installed:
    """Build the wheel from a copy of the sources and install it into a new virtualenv under ``base``."""
    house = wheelhouse()
    source = base / "src"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=IGNORED)
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    dist = base / "dist"
    _pip("wheel", "-q", "--no-index", "--find-links", str(house), "--no-deps", "-w", str(dist), str(source))
    wheel = next(dist.glob("roomquake-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    _pip("install", "-q", "--no-index", "--find-links", str(house), "--find-links", str(dist),
         "-c", str(ROOT / "constraints.txt"), "roomquake", python=str(venv / "bin" / "python"))
    return Installed(venv, wheel, house)


@pytest.fixture(scope="session")
def installed_roomquake(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """roomquake installed from its wheel into a fresh virtualenv outside the repository."""
    return install(tmp_path_factory.mktemp("installed"))
