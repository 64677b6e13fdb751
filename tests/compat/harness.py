"""Node.js for the compatibility tests: find it, install the pinned packages once, run a script.

tests/conftest.py loads this file by path (pytest runs
with --import-mode=importlib) and offers its ``node_project`` fixture. Without
a usable node and npm the tests are skipped, except under CI=true, where they
fail: CI must really run them (.ci/run installs nodejs and npm).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaos.images.lock import file_lock

NODE_DIR = Path(__file__).resolve().parent / "node"
# undici 7, which testcontainers' HTTP wait uses here, needs Node 20.18.1.
MIN_NODE = (20, 18, 1)
STAMP = "node_modules/.roomquake-installed"  # hash of the package-lock.json installed


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the Node compatibility tests must run; .ci/run installs nodejs and npm)")
    pytest.skip(reason)


@dataclass(frozen=True)
class ScriptResult:
    script: str
    returncode: int
    stdout: str
    stderr: str

    def output(self) -> str:
        return f"--- stdout of {self.script}\n{self.stdout}\n--- stderr\n{self.stderr[-4000:]}"

    def assert_passed(self, name: str, at_least: int) -> int:
        """The script's own verdict: exit 0 and a PASS line counting every ``ok`` line; the count."""
        assert self.returncode == 0, self.output()
        found = re.search(rf"^PASS {re.escape(name)}: (\d+) checks$", self.stdout, re.MULTILINE)
        assert found, self.output()
        count = int(found.group(1))
        assert count == len(re.findall(r"^ok ", self.stdout, re.MULTILINE)) and count >= at_least, self.output()
        return count


@dataclass(frozen=True)
class NodeProject:
    """tests/compat/node with its pinned packages installed."""

    node: str
    directory: Path

    def run(self, script: str, env: dict[str, str], timeout: float) -> ScriptResult:
        result = subprocess.run(
            [self.node, script], cwd=self.directory, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )
        return ScriptResult(script, result.returncode, result.stdout, result.stderr)


def _version(node: str) -> tuple[int, ...]:
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    return tuple(int(part) for part in re.findall(r"\d+", out)[:3])


def _install(npm: str) -> None:
    """``npm ci`` from the committed lock file, unless that exact lock file is installed already."""
    wanted = hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()
    stamp = NODE_DIR / STAMP
    # Two sessions at once must not run `npm ci` (which empties node_modules) under each other.
    with file_lock(NODE_DIR / ".install.lock", timeout=600):
        if stamp.exists() and stamp.read_text().strip() == wanted:
            return
        result = subprocess.run(
            # No install scripts: nothing here needs one, and they would build native addons.
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
            cwd=NODE_DIR, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
        )
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or [f"exit {result.returncode}"]
            pytest.fail(f"npm ci in {NODE_DIR} failed (exit {result.returncode}): {lines[-1]}", pytrace=False)
        stamp.write_text(wanted + "\n")


@pytest.fixture(scope="session")
def node_project() -> NodeProject:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable(f"{'node' if node is None else 'npm'} is not installed (apt-get install nodejs npm)")
    version = _version(node)
    if version < MIN_NODE:
        wanted = ".".join(map(str, MIN_NODE))
        _unavailable(f"node {'.'.join(map(str, version))} is older than {wanted}, which the pinned packages need")
    _install(npm)
    return NodeProject(node=node, directory=NODE_DIR)
