"""Relaunches: the hosting edge dies, the host vanishes; supervisors move the room, everyone follows.

These tests need the room to stay put until the fault, so they use the
conftest's TOLERANT detection thresholds: with 1 s thresholds a starved
process on a loaded machine got rooms relaunched before any fault (with
CROWD_GIVE_UP some listeners then left for good, and "all 60 hear generation
1" could never hold). Deadlines below come from the timings in use.
"""

from __future__ import annotations

import time

import pytest

from .conftest import TOLERANT

BASE = {"edge": 2, "control": 1, "supervisor": 2, "host": 2, "crowd": 1}
ACCOUNTS = {"host-1": {"HOST_ACCOUNT": "alice"}, "host-2": {"HOST_ACCOUNT": "bob"}}


def start(make_stack, **env):
    stack = make_stack(BASE, env={**TOLERANT, **env}, per_instance=ACCOUNTS)
    stack.start_all(["edge-1", "control-1"])
    stack.start_all(["edge-2", "supervisor-1", "supervisor-2", "host-1", "host-2", "crowd-1"])
    return stack


def live_and_heard(stack, room: str, listeners: int) -> dict:
    """The room at generation 1 heard by every listener; fails at once, saying why, if it moved first."""
    def heard() -> bool:
        found = stack.room(room)
        if found["generation"] != 1:
            pytest.fail(f"room {room} relaunched before any fault: {found['last_relaunch']}")
        return stack.stats()["rooms"].get(room, {}).get("members", {}).get("1") == listeners

    # joins: a control call and a handshake each, retried with backoff; the ramp is 0.3 s
    stack.wait_for(heard, 10 * stack.seconds("CROWD_BACKOFF_MAX") + 10, f"all {listeners} listeners to hear generation 1")
    return stack.room(room)


def relaunch_deadline(stack, grace: str) -> float:
    """Detection after ``grace``, a supervisor tick, and the room's new host or edge reached, with margin."""
    return 3 * stack.seconds(grace) + 10 * stack.seconds("HOST_POLL_INTERVAL") + 5


def test_killing_the_hosting_edge_relaunches_the_room_elsewhere_and_listeners_follow(make_stack):
    stack = start(make_stack)
    status, _ = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": ["bob"]})
    assert status == 201
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": 40, "ramp_s": 0.3})
    before = live_and_heard(stack, "launch", 40)
    dead = before["edge"]
    other = "edge-2" if dead == "edge-1" else "edge-1"

    killed_at = time.time()
    stack.kill(dead)
    after = stack.wait_for(lambda: (r := stack.room("launch"))["generation"] == 2 and r,
                           relaunch_deadline(stack, "HEARTBEAT_TIMEOUT"), "relaunch to generation 2")
    assert (after["state"], after["edge"], after["host"]) == ("live", other, "alice")
    record = after["last_relaunch"]
    assert record["reason"] == "edge_lost"
    timeout = stack.seconds("HEARTBEAT_TIMEOUT")
    # detection cannot precede the timeout after the last beat, which was at most one interval before the kill
    assert record["detected_at"] - record["failed_at"] >= timeout
    assert record["failed_at"] <= killed_at + 0.05 <= record["completed_at"]

    stats = stack.wait_for(
        lambda: (s := stack.stats())["rooms"]["launch"]["relaunches"]
        and s["rooms"]["launch"]["relaunches"][0]["back"] == 40 and s,
        relaunch_deadline(stack, "HEARTBEAT_TIMEOUT"), "all 40 listeners back on generation 2",
    )
    relaunch = stats["rooms"]["launch"]["relaunches"][0]
    assert (relaunch["from"], relaunch["to"], relaunch["fraction_back"]) == (1, 2, 1.0)
    # The crowd felt the detection time: its outage runs from the last old frame it read, sent before the kill
    # (not before the last beat, which detection counts from), to a new frame, sent after detection. Not
    # `>= timeout`: that failed at 2.967 s beside a CPU hog, the last beat 0.03 s or more before the kill.
    # 0.5 s for old frames in flight at the kill that a starved crowd read late.
    assert relaunch["outage_s"] >= record["detected_at"] - killed_at - 0.5, (relaunch, record, killed_at)
    assert stats["reconnects"] >= 40 and stats["recovered_after_relaunch"] == 40
    assert stats["frames"]["out_of_order"] == 0
    sup_relaunches = sum(stack.metric(s, "supervisor_relaunches_total", 'reason="edge_lost"')
                         for s in ("supervisor-1", "supervisor-2"))
    assert sup_relaunches == 1  # exactly one supervisor owned the room's shard
    assert sum(stack.metric(s, "supervisor_relaunch_complete_seconds_count", 'reason="edge_lost"')
               for s in ("supervisor-1", "supervisor-2")) == 1


def test_a_vanished_host_is_replaced_by_the_backup_account_after_the_grace(make_stack):
    stack = start(make_stack, CROWD_GIVE_UP="0.3", CROWD_SEED="7")
    stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": ["bob", "carol"]})
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": 60, "ramp_s": 0.3})
    before = live_and_heard(stack, "launch", 60)

    killed_at = time.time()
    stack.kill("host-1")
    after = stack.wait_for(lambda: (r := stack.room("launch"))["generation"] == 2 and r,
                           relaunch_deadline(stack, "HOST_GRACE"), "relaunch under bob")
    assert (after["host"], after["backups"], after["edge"]) == ("bob", ["carol"], before["edge"])
    record = after["last_relaunch"]
    assert record["reason"] == "host_lost"
    grace = stack.seconds("HOST_GRACE")
    assert record["completed_at"] - killed_at >= grace - 0.15  # host_seen is refreshed once per heartbeat

    # bob's host instance adopts the room and streams it
    stack.wait_for(lambda: any(s["room"] == "launch" and s["connected"]
                               for s in stack.http("GET", stack.url("host-2", "/rooms"))[1]),
                   relaunch_deadline(stack, "HOST_GRACE"), "bob to stream")
    stats = stack.wait_for(
        lambda: (s := stack.stats())["rooms"]["launch"]["relaunches"]
        and s["connected"] + s["gave_up"] == 60 and s["rooms"]["launch"]["relaunches"][0]["back"] == s["connected"]
        and s, relaunch_deadline(stack, "HOST_GRACE"), "every listener to follow or give up",
    )
    relaunch = stats["rooms"]["launch"]["relaunches"][0]
    assert relaunch["outage_s"] >= grace - 0.15
    # with a 30% give-up chance per disruption, about 70% follow (binomial, n=60: well within 0.4-0.95)
    assert 0.4 <= relaunch["fraction_back"] <= 0.95, relaunch
    assert stats["gave_up"] == 60 - relaunch["back"]
    assert stack.metric("supervisor-1", "supervisor_relaunches_total", 'reason="host_lost"') + stack.metric(
        "supervisor-2", "supervisor_relaunches_total", 'reason="host_lost"') == 1


def test_an_edge_over_capacity_kicks_and_the_crowd_rejoins_with_backoff(make_stack):
    stack = make_stack({"edge": 1, "control": 1, "supervisor": 1, "host": 1, "crowd": 1},
                       env={**TOLERANT, "EDGE_CAPACITY": "10", "CROWD_SEED": "3"},
                       per_instance={"host-1": {"HOST_ACCOUNT": "alice"}})
    stack.start_all(["edge-1", "control-1", "supervisor-1", "host-1", "crowd-1"])
    stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": []})
    stack.http("POST", stack.url("crowd-1", "/surge"), {"room": "launch", "listeners": 15, "over_s": 0})
    stats = stack.wait_for(lambda: (s := stack.stats())["kicks"] >= 10 and s, 20, "kicks")
    assert stack.metric("edge-1", "edge_listeners") == 10
    assert stack.metric("edge-1", "edge_kicks_total") >= 10
    # a rejoining listener counts as connected from its handshake until the edge's 4001 close
    # reaches it (CI once read 11), so the crowd's view is read once no kick is in flight
    assert 10 <= stats["connected"] <= 15
    stats = stack.wait_for(lambda: (s := stack.stats())["connected"] == 10 and s, 10, "the crowd to see 10")
    # kicked listeners keep trying (with backoff): reconnects grow, but the edge never exceeds its capacity
    later = stack.wait_for(lambda: (s := stack.stats())["reconnects"] > stats["reconnects"] and s, 20, "rejoins")
    assert later["joins"]["attempted"] > 15
    assert stack.metric("edge-1", "edge_listeners") == 10
    # listeners leave: the kicked ones get in on a later attempt
    stack.http("POST", stack.url("crowd-1", "/drain"), {"fraction": 0.5})
    try:
        stack.wait_for(lambda: stack.metric("edge-1", "edge_listeners") == 8, 20, "the remaining 8 all connected")
    except AssertionError as err:
        raise AssertionError(f"{err}; crowd: {stack.stats()}") from None
