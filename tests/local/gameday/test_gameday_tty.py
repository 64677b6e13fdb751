"""A game day on a pseudo-terminal: the live dashboard, a note typed in, Enter, then Ctrl-C with a fault active."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: session leader with the pty as its controlling terminal
            os.chdir(ROOT)
            env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "70"}
            os.execve(sys.executable, [sys.executable, "-m", "chaos", *argv], env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 70, 160, 0, 0))
        self.raw = bytearray()
        self.status: int | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.raw += data

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def wait_for(self, pattern: str, timeout: float = 90) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not seen; screen:\n{self.text[-3000:]}")

    def send(self, data: str) -> None:
        os.write(self.fd, data.encode())

    def wait(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                time.sleep(0.3)  # the last output
                return self.status
            time.sleep(0.1)
        raise AssertionError("the game day did not end; screen:\n" + self.text[-3000:])

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.mark.timeout(150)
def test_dashboard_note_enter_and_ctrl_c_halt_on_a_terminal(tmp_path: Path, state_dir: Path) -> None:
    term = Terminal(["gameday", "--backend", "local", "--journal-dir", str(tmp_path), "experiments/no-flap.yaml"])
    try:
        term.wait_for(r"key probes")  # the live dashboard is up
        term.wait_for(r"slow-heartbeats.*WAITING FOR YOU")
        term.send("n")
        term.wait_for(r"note> _")
        term.send("latency about to start\r")
        term.wait_for(r"t=\d+\.\ds latency about to start")
        term.send("\r")  # Enter: run the step
        term.wait_for(r"slow-heartbeats.*active: edge->state-1/upstream")
        term.send("\x03")  # Ctrl-C while the latency toxics are in place
        assert term.wait() == 3
        term.wait_for(r"HALTED: every fault rolled back at once: slow-heartbeats \(edge->state-1/upstream, edge->state-1/downstream\): rolled back")
        journal = json.loads(Path(term.wait_for(r"journal: (\S+\.json)").group(1)).read_text())
    finally:
        term.close()
    assert journal["verdict"] == "aborted" and "interrupted by SIGINT" in journal["reason"]
    rolled = [e for e in journal["events"] if e["kind"] == "fault_rolled_back"]
    assert [(e["step"], e["ok"]) for e in rolled] == [("slow-heartbeats", True)]
    note = next(e for e in journal["events"] if e["kind"] == "operator_note")
    assert note["message"] == "latency about to start"
    assert not list(state_dir.glob("2*.json"))  # the stack it brought up is down
