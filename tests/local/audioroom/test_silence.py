"""Listeners notice silence (contract C2): a listener that hears nothing for CROWD_SILENCE_TIMEOUT asks
control where the room is and moves there, as a real client does; a room still where it was causes no churn.

The hosting edge is paused (SIGSTOP: its connections stay open, nothing
arrives, nothing is closed) for much longer than the silence timeout. The
room is relaunched on the other edge after HEARTBEAT_TIMEOUT; the listeners
must hear it there while the old edge is still paused, not when it resumes.
"""

from __future__ import annotations

import signal
import time

from .conftest import TOLERANT

BASE = {"edge": 2, "control": 1, "supervisor": 1, "host": 1, "crowd": 1}
ACCOUNTS = {"host-1": {"HOST_ACCOUNT": "alice"}}
LISTENERS = 60


def hearing(stack) -> int:
    return stack.stats()["hearing"]


def start(make_stack, **env):
    stack = make_stack(BASE, env={**TOLERANT, **env}, per_instance=ACCOUNTS)
    stack.start_all(["edge-1", "control-1"])
    stack.start_all(["supervisor-1", "host-1", "crowd-1"])
    status, body = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": []})
    assert status == 201 and body["edge"] == "edge-1", body
    stack.start("edge-2")
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": LISTENERS, "ramp_s": 0.5})
    stack.wait_for(lambda: hearing(stack) == LISTENERS, 30, f"all {LISTENERS} listeners hearing")
    return stack


def test_listeners_on_a_silent_edge_move_to_the_relaunched_room_while_it_is_still_paused(make_stack):
    stack = start(make_stack)
    silence = stack.seconds("CROWD_SILENCE_TIMEOUT")
    timeout = stack.seconds("HEARTBEAT_TIMEOUT")
    pause = 3 * silence + 2 * timeout + 3.0  # long enough that "moved when it resumed" cannot pass
    before = stack.stats()

    stack.signal("edge-1", signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        stack.wait_for(lambda: stack.room("launch")["generation"] == 2, pause, "the relaunch on edge-2")
        relaunched_after = time.monotonic() - paused_at
        stack.wait_for(lambda: stack.stats()["rooms"]["launch"]["members"].get("2") == LISTENERS,
                       pause - (time.monotonic() - paused_at), "every listener hearing generation 2 on edge-2")
        moved_after = time.monotonic() - paused_at
        assert stack.procs["edge-1"].popen.poll() is None  # still paused, never closed anyone
    finally:
        stack.signal("edge-1", signal.SIGCONT)
    assert moved_after < pause
    stats = stack.stats()
    assert stats["silences"] - before["silences"] >= LISTENERS  # each noticed the silence
    assert stack.metric("crowd-1", "crowd_silences_total") >= LISTENERS
    assert stack.metric("crowd-1", "crowd_silence_moves_total") >= 1
    assert stack.room("launch")["edge"] == "edge-2"
    # the history says how: silence on edge-1, a close of our own, a connect to edge-2 at generation 2
    _, history = stack.http("GET", stack.url("crowd-1", "/history?room=launch"))
    kinds = [[e["kind"] for e in x["events"]] for x in history["listeners"]]
    assert sum("silence" in k for k in kinds) >= LISTENERS // 2, kinds[:3]
    assert all(x["segments"][-1]["gen"] == 2 and x["segments"][-1]["edge"] == "edge-2" for x in history["listeners"])
    print(f"\nedge-1 paused {pause:.1f}s: relaunched after {relaunched_after:.2f}s, all {LISTENERS} listeners "
          f"hearing generation 2 after {moved_after:.2f}s (silence timeout {silence}s)")


def test_a_silent_room_that_is_still_where_it_was_keeps_its_listeners(make_stack):
    # the host pauses longer than the silence timeout but shorter than HOST_GRACE: control keeps
    # answering "edge-1, generation 1", so listeners stay connected and hear the host again after
    stack = start(make_stack, HOST_GRACE="12s")
    silence = stack.seconds("CROWD_SILENCE_TIMEOUT")
    before = stack.stats()
    stack.signal("host-1", signal.SIGSTOP)
    try:
        stack.wait_for(lambda: stack.stats()["silences"] - before["silences"] >= LISTENERS, 10 * silence,
                       "every listener to notice the silence")
        time.sleep(2 * silence)  # several checks each, all told "it is here"
    finally:
        stack.signal("host-1", signal.SIGCONT)
    stack.wait_for(lambda: hearing(stack) == LISTENERS, 10 * silence, "everyone hearing the host again")
    after = stack.stats()
    assert after["reconnects"] == before["reconnects"] and after["connected"] == LISTENERS
    assert stack.room("launch")["generation"] == 1
    # one silence per listener, however many times each asked control meanwhile
    assert after["silences"] - before["silences"] == LISTENERS
    assert stack.metric("control-1", "control_joins_total", 'result="ok"') >= before["joins"]["succeeded"] + 2 * LISTENERS
