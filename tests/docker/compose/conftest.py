"""Fixtures of the Compose tests: the CLI, a Compose project brought up by docker-compose.

The offline fixture base (``compose_base``) is in tests/docker/conftest.py: the swarm tests use it too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "fixtures" / "compose"
UP_TIMEOUT_S = 600  # a first build of the fixture images on a loaded machine takes minutes


@pytest.fixture
def roomquake(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``roomquake(*args)``: ``python -m chaos ARGS`` from the checkout, with the test's own run registry and journals."""
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / "state")}

    def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        if args and args[0] == "run":
            args = ("run", "--journal-dir", str(tmp_path / "journals"), *args[1:])
        return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class ComposeProject:
    name: str
    folder: Path
    env: dict[str, str]

    def compose(self, *args: str, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker-compose", "-p", self.name, *args], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tasks_project(docker_engine, compose_base) -> Iterator[ComposeProject]:
    """fixtures/compose/tasks up under a unique project name (docker-compose, local images, 127.0.0.1 only); down after."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    project = ComposeProject(f"rqtest{uuid.uuid4().hex[:8]}", FIXTURES / "tasks",
                             {**os.environ, "FRONTEND_PORT": str(free_port())})
    try:
        up = project.compose("up", "-d")
        assert up.returncode == 0, up.stderr[-2000:]
        yield project
    finally:
        # -v: its volume; --rmi local: the images it built for this project name
        project.compose("down", "-v", "--rmi", "local", "--timeout", "5")
