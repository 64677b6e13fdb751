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

HOLD = """
import sys, time
from pathlib import Path
from chaos.images.lock import file_lock
with file_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(lock: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_waits_and_is_told(tmp_path: Path) -> None:
    lock = tmp_path / "images.lock"
    holder = _holder(lock, 0.5)
    told: list[str] = []
    with file_lock(lock, on_wait=told.append):
        assert holder.poll() is not None or holder.wait(timeout=10) == 0  # we only got it once it let go
    assert told and "waiting for another roomquake process" in told[0]


def test_lock_of_a_killed_holder_is_free(tmp_path: Path) -> None:
    lock = tmp_path / "images.lock"
    holder = _holder(lock, 60)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    with file_lock(lock, timeout=5):
        pass


def test_gives_up_with_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "images.lock"
    holder = _holder(lock, 30)
    try:
        started = time.monotonic()
        with pytest.raises(EnvironmentProblem) as caught, file_lock(lock, timeout=0.5):
            pass
        assert time.monotonic() - started < 20
        assert "waiting for the image build lock" in str(caught.value)
    finally:
        holder.kill()
        holder.wait(timeout=10)
