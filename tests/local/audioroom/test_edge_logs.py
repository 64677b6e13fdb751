"""What an edge logs when it moves a room's host out (close 4004): one line, no traceback.

A room relaunched elsewhere while its host is still connected to the old edge
is an expected event (a false edge loss, a fenced edge coming back); the old
edge closes the host with 4004 ``moved``, and its log must say so plainly.
"""

from __future__ import annotations

import signal
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


class StayingHost:
    """A host that keeps streaming to the edge it was given, whatever happens (it never follows a relaunch)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.closed = threading.Event()
        self.code: int | None = None
        self.reason = ""
        self._thread = threading.Thread(target=self._stream, daemon=True)

    def __enter__(self) -> StayingHost:
        self._ws = connect(self.url, compression=None, open_timeout=5).__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed.set()
        self._thread.join(5)
        self._ws.__exit__(None, None, None)

    def _stream(self) -> None:
        seq = 0
        try:
            while not self.closed.wait(0.05):
                seq += 1
                self._ws.send(seq.to_bytes(8, "big"))
        except ConnectionClosed as closed:
            self.code, self.reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, "")
        finally:
            self.closed.set()


def test_a_host_moved_out_with_4004_is_one_log_line_without_a_traceback(make_stack):
    stack = make_stack({"edge": 2, "control": 1, "supervisor": 1}, env={"LOG_LEVEL": "INFO"})
    stack.start_all(["edge-1", "control-1"])
    stack.start_all(["edge-2", "supervisor-1"])
    status, body = stack.http("POST", stack.url("control-1", "/rooms"), {"room": "launch", "host": "alice", "backups": []})
    assert status == 201 and body["edge"] == "edge-1", body
    with StayingHost(f"ws://127.0.0.1:{stack.procs['edge-1'].port}/host/launch?generation=1&account=alice") as host:
        # admitted and streaming (a host paused mid-admission would be refused with 4004 on resume instead)
        stack.wait_for(lambda: stack.metric("edge-1", "edge_frames_in_total") >= 3, 10, "edge-1 to take the host's frames")
        # edge-1 freezes long enough to be declared dead: the room is relaunched on edge-2 meanwhile
        stack.signal("edge-1", signal.SIGSTOP)
        try:
            stack.wait_for(lambda: stack.room("launch")["generation"] == 2, 20, "relaunch to generation 2")
        finally:
            stack.signal("edge-1", signal.SIGCONT)
        # back, edge-1 learns the room is no longer its own and moves the still-connected host out
        assert host.closed.wait(20), "edge-1 never closed the old host connection"
        assert (host.code, host.reason) == (4004, "moved")
        stack.wait_for(lambda: "host of room launch" in stack.log_tail("edge-1", 200), 10, "edge-1 to log the move")
    log = stack.procs["edge-1"].log.read_text(errors="replace")
    lines = [line for line in log.splitlines() if "host of room launch" in line]
    assert len(lines) == 1, log
    assert "generation 1" in lines[0] and "4004 moved" in lines[0], lines[0]
    assert "Traceback" not in log and "connection handler failed" not in log, log
    assert stack.metric("edge-1", "edge_moved_total") >= 1
