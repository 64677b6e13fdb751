"""control: join fails fast with 503 and a reason while state is unreachable, and recovers after."""

from __future__ import annotations

import signal
import time

STATE_TIMEOUT = 0.3  # CI profile


def timed_join(stack, room: str = "launch") -> tuple[int, dict, float]:
    started = time.monotonic()
    status, body = stack.http("POST", stack.url("control-1", f"/rooms/{room}/join"), timeout=10)
    return status, body, time.monotonic() - started


def test_join_fails_fast_while_state_is_paused_or_dead_and_recovers(make_stack):
    stack = make_stack({"edge": 1, "control": 1})
    stack.start_all(["edge-1", "control-1"])
    assert stack.http("POST", stack.url("control-1", "/rooms"), {"room": "launch", "host": "alice"})[0] == 201
    assert timed_join(stack)[0] == 200

    time.sleep(0.1)  # past control's join cache (half a heartbeat interval)
    stack.signal("state", signal.SIGSTOP)  # hangs: only timeouts can tell
    try:
        status, body, took = timed_join(stack)
        assert status == 503 and body["reason"].startswith("state unreachable"), body
        # one try + one retry, each bounded by STATE_TIMEOUT (0.6 s); the margin is for a busy machine
        assert took < 10 * STATE_TIMEOUT + 2.0
        assert stack.http("GET", stack.url("control-1", "/health"))[0] == 503
    finally:
        stack.signal("state", signal.SIGCONT)
    stack.wait_for(lambda: timed_join(stack)[0] == 200, 15, "join to work again after SIGCONT")

    time.sleep(0.1)
    stack.kill("state")  # refused: fails at once
    status, body, took = timed_join(stack)
    assert status == 503 and body["reason"].startswith("state unreachable"), body
    assert took < 10 * STATE_TIMEOUT + 2.0
    stack.start_state()  # same port, empty data (no persistence)
    stack.wait_for(lambda: timed_join(stack)[0] == 404, 15, "control to reach the new state (room unknown)")
    stack.wait_for(lambda: stack.http("POST", stack.url("control-1", "/rooms"),
                                      {"room": "launch", "host": "alice"})[0] == 201, 15, "room created again")
    assert timed_join(stack)[0] == 200
    assert stack.metric("control-1", "control_joins_total", 'result="state_unreachable"') == 2
