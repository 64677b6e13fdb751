"""A room relaunched back onto an edge that hosted an earlier generation (A -> B -> A).

From a run on a starved machine: the hosting edge's heartbeats lapsed, so the
room was (falsely) relaunched elsewhere; that edge was then lost for real and the
room came back to the first edge. Host and listeners must follow the room every
time: the host must not hang on the connection to an edge that stopped answering
(it would miss HOST_GRACE and the room would go to the backup account), and the
edge that dropped the old generation must take the room's new generation back.
"""

from __future__ import annotations

import signal
import time

from .conftest import TOLERANT

BASE = {"edge": 2, "control": 1, "supervisor": 1, "host": 2, "crowd": 1}
ACCOUNTS = {"host-1": {"HOST_ACCOUNT": "alice"}, "host-2": {"HOST_ACCOUNT": "bob"}}
LISTENERS = 30


def deadline(stack) -> float:
    """A relaunch (detection, a tick) and everyone following it (host poll, backoff), with margin."""
    return 5 * stack.seconds("HEARTBEAT_TIMEOUT") + 10 * stack.seconds("HOST_POLL_INTERVAL") + \
        5 * stack.seconds("CROWD_BACKOFF_MAX") + 5


def all_hear(stack, generation: int) -> None:
    stack.wait_for(
        lambda: (s := stack.stats())["rooms"]["launch"]["members"].get(str(generation), 0) == LISTENERS
        and s["connected"] == LISTENERS,
        deadline(stack), f"all {LISTENERS} listeners to hear generation {generation}",
    )


def alice_streams(stack, edge: str, generation: int) -> None:
    stack.wait_for(lambda: any((s["room"], s["edge"], s["generation"], s["connected"]) == ("launch", edge, generation, True)
                               for s in stack.http("GET", stack.url("host-1", "/rooms"))[1]),
                   deadline(stack), f"alice to stream generation {generation} to {edge}")


def test_a_room_relaunched_back_onto_an_edge_that_paused_and_fenced_gets_host_and_listeners_back(make_stack):
    # TOLERANT: the room must not move before the pause; HOST_GRACE 3 s still catches a host stuck in the
    # old edge's 10 s close handshake (the bug this guards against)
    stack = make_stack(BASE, env=TOLERANT, per_instance=ACCOUNTS)
    stack.start_all(["edge-1", "control-1", "supervisor-1", "host-1", "host-2", "crowd-1"])
    status, body = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": ["bob"]})
    assert status == 201 and body["edge"] == "edge-1", body
    stack.start("edge-2")
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": LISTENERS, "ramp_s": 0.3})
    all_hear(stack, 1)
    grace = stack.seconds("HOST_GRACE")

    # edge-1 is starved (paused) long enough to be declared dead: a false edge loss
    stack.signal("edge-1", signal.SIGSTOP)
    try:
        stack.wait_for(lambda: stack.room("launch")["generation"] == 2, deadline(stack), "relaunch to generation 2")
        # the host leaves the unresponsive edge-1 at once and is heard on edge-2 within the grace
        alice_streams(stack, "edge-2", 2)
        time.sleep(2 * grace)  # still paused: a host stuck on edge-1 would lose the room to bob by now
        room = stack.room("launch")
        assert (room["generation"], room["edge"], room["host"]) == (2, "edge-2", "alice"), room
    finally:
        stack.signal("edge-1", signal.SIGCONT)
    # the listeners left the silent edge-1 on their own (silence watchdog); edge-1 resumes, learns from its
    # first heartbeat that generation 1 is no longer its own and drops it
    all_hear(stack, 2)
    stack.wait_for(lambda: stack.metric("edge-1", "edge_rooms") == 0, deadline(stack), "edge-1 to drop generation 1")
    stack.wait_for(lambda: stack.http("GET", stack.url("edge-1", "/health"))[0] == 200, deadline(stack), "edge-1 healthy again")

    # edge-2 dies for real: the room comes back to edge-1, which hosted generation 1
    stack.kill("edge-2")
    after = stack.wait_for(lambda: (r := stack.room("launch"))["generation"] == 3 and r, deadline(stack), "relaunch to generation 3")
    assert (after["state"], after["edge"], after["host"]) == ("live", "edge-1", "alice"), after
    alice_streams(stack, "edge-1", 3)
    all_hear(stack, 3)
    time.sleep(2 * grace)  # the host is heard there, so no host-loss relaunch follows
    final = stack.room("launch")
    assert (final["state"], final["generation"], final["edge"], final["host"]) == ("live", 3, "edge-1", "alice"), final
    assert stack.stats()["connected"] == LISTENERS
