"""Shared harness of the local tier: an isolated run registry, and roomquake
verbs in subprocesses whose output lines are collected as they come."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolated run registry and ledgers for this test (also for the subprocesses it starts)."""
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def module_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One isolated run registry for a module whose tests share a stack."""
    path = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROOMQUAKE_STATE_DIR", str(path))
        yield path


class CliProcess:
    """``roomquake VERB ...`` in a subprocess: type into its stdin, wait for its lines."""

    def __init__(self, args: list[str], cwd: Path = ROOT) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chaos", *args], cwd=cwd, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait_for(self, text: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not seen; output:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def cli_process() -> Iterator[Callable[[list[str]], CliProcess]]:
    """Start ``roomquake`` subprocesses; any still running are killed after the test."""
    started: list[CliProcess] = []

    def start(args: list[str]) -> CliProcess:
        proc = CliProcess(args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
