"""The build lock serialises real processes and is freed when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.errors import EnvironmentProblem
from chaos.images.lock import file_lock

# Holds the lock until a line arrives on stdin (or stdin closes).
HOLD = """
import sys
from pathlib import Path
from chaos.images.lock import file_lock
with file_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


def _holder(lock: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def test_second_process_waits_until_the_first_lets_go(tmp_path: Path) -> None:
    lock = tmp_path / "images.lock"
    holder = _holder(lock)
    told: list[str] = []

    def on_wait(message: str) -> None:
        told.append(message)
        _release(holder)  # only now may the holder let go

    with file_lock(lock, on_wait=on_wait):
        assert holder.wait(timeout=30) == 0  # we got the lock only after the holder had finished
    assert len(told) == 1 and "waiting for another roomquake process" in told[0]


def test_lock_of_a_killed_holder_is_free(tmp_path: Path) -> None:
    lock = tmp_path / "images.lock"
    holder = _holder(lock)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with file_lock(lock, timeout=5):
        pass


def test_gives_up_with_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "images.lock"
    holder = _holder(lock)
    try:
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem) as caught, file_lock(lock, timeout=0.5):
            pass
        assert time.monotonic() - started < 60
        assert "waiting for the image build lock" in str(caught.value)
    finally:
        holder.kill()
        holder.wait(timeout=10)
