"""The signal handler only notes; the main thread acts at its checkpoints (chaos.signals, chaos.run.interrupt)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chaos.labels import OWNER_HOST, OWNER_PID, OWNER_START, owner_alive, proc_stat, process_start_time
from chaos.signals import Interrupted, Interrupts

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def interrupts():
    record = Interrupts()
    assert record.install()
    try:
        yield record
    finally:
        record.uninstall()


def test_the_handler_only_notes_and_the_checkpoint_raises(interrupts: Interrupts) -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # a handler that raised would have raised by now, in the middle of this line
    assert interrupts.received == ["SIGINT"]
    with pytest.raises(Interrupted, match="interrupted by SIGINT"):
        interrupts.check()


def test_while_winding_down_the_checkpoint_lets_the_rollback_finish(interrupts: Interrupts, capfd) -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    interrupts.winding_down = True
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    interrupts.check()  # no raise: the run already decided to stop
    assert interrupts.received == ["SIGTERM", "SIGINT"]
    assert "SIGINT received: still rolling back, please wait" in capfd.readouterr().err


def test_a_checkpoint_in_another_thread_never_raises(interrupts: Interrupts) -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)
    seen: list[BaseException] = []

    def worker() -> None:
        try:
            interrupts.check()
        except BaseException as err:  # noqa: BLE001
            seen.append(err)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == []


def test_uninstall_gives_back_the_previous_handlers() -> None:
    record = Interrupts()
    before = signal.getsignal(signal.SIGTERM)
    record.install()
    assert signal.getsignal(signal.SIGTERM) == record._handle
    assert not record.install()  # already ours
    record.uninstall()
    assert signal.getsignal(signal.SIGTERM) == before


def test_signals_amid_queue_work_never_leave_a_lock_held(interrupts: Interrupts, capfd) -> None:
    """The hang of the old guard: an exception raised from the handler inside queue code left its lock held.

    Signals arrive at random instants while the main thread works a queue;
    with a handler that only notes, every operation completes and the queue's
    lock is free afterwards, every time.
    """
    stop = threading.Event()

    def pester() -> None:
        while not stop.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.0005)

    work: queue.Queue[int] = queue.Queue()
    thread = threading.Thread(target=pester, daemon=True)
    thread.start()
    interrupts.winding_down = True  # (only so that the handler does not write a line per signal)
    deadline = time.monotonic() + 20
    n = 0
    try:
        while len(interrupts.received) < 300 and time.monotonic() < deadline:
            work.put(n)
            assert work.get() == n
            n += 1
    finally:
        stop.set()
        thread.join()
    assert len(interrupts.received) >= 300  # the signals really came, amid the queue's work
    assert work.mutex.acquire(timeout=1)
    work.mutex.release()


def test_a_zombie_owner_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    labels = {OWNER_PID: str(child.pid), OWNER_HOST: os.uname().nodename, OWNER_START: process_start_time(child.pid)}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # exited, not reaped: a zombie
        if proc_stat(child.pid)[:1] == ["Z"]:
            break
        time.sleep(0.02)
    try:
        assert os.path.exists(f"/proc/{child.pid}")
        assert not owner_alive(labels)
    finally:
        child.wait()
    me = {OWNER_PID: str(os.getpid()), OWNER_HOST: os.uname().nodename, OWNER_START: process_start_time(os.getpid())}
    assert owner_alive(me)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_command_line_installs_the_handler_before_anything_else(sig: int) -> None:
    """`python -m chaos` notes a signal from its package's first line: exit 3, not 130 or death by SIGTERM."""
    code = (
        "import os, signal, sys\n"
        "sys.orig_argv[:] = [sys.executable, '-m', 'chaos', 'run']\n"
        "import chaos\n"
        f"os.kill(os.getpid(), {int(sig)})\n"
        "from chaos.signals import INTERRUPTS\n"
        "print(INTERRUPTS.received)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and signal.Signals(sig).name in done.stdout, done.stdout + done.stderr
