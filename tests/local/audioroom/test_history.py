"""What a checker reads after a relaunch (contract C1): the crowd's per-listener history and control's
relaunch history, from real processes."""

from __future__ import annotations

import time

from .conftest import TOLERANT

BASE = {"edge": 2, "control": 1, "supervisor": 1, "host": 2, "crowd": 1}
ACCOUNTS = {"host-1": {"HOST_ACCOUNT": "alice"}, "host-2": {"HOST_ACCOUNT": "bob"}}
LISTENERS = 30
SEGMENT_KEYS = {"gen", "edge", "first_seq", "last_seq", "first_t", "last_t", "frames", "dups", "reorders", "max_gap_s"}


def test_after_an_edge_loss_every_listener_history_shows_both_generations_and_control_lists_the_relaunch(make_stack):
    stack = make_stack(BASE, env=TOLERANT, per_instance=ACCOUNTS)  # this test is about what is recorded
    stack.start_all(["edge-1", "control-1"])
    stack.start_all(["edge-2", "supervisor-1", "host-1", "host-2", "crowd-1"])
    status, body = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": ["bob"]})
    assert status == 201 and body["relaunch_history"] == [], body
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": LISTENERS, "ramp_s": 0.3})
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "elsewhere", "listeners": 3, "ramp_s": 0})
    stack.wait_for(lambda: stack.stats()["rooms"]["launch"]["members"].get("1") == LISTENERS, 30,
                   "all listeners hearing generation 1")
    first = stack.room("launch")["edge"]
    killed_at = time.time()
    stack.kill(first)
    stack.wait_for(lambda: stack.stats()["rooms"]["launch"]["members"].get("2") == LISTENERS, 30,
                   "all listeners hearing generation 2")
    second = stack.room("launch")["edge"]
    assert second != first

    room = stack.room("launch")
    [entry] = room["relaunch_history"]
    assert (entry["generation"], entry["edge"], entry["reason"]) == (2, second, "edge_lost")
    assert entry["failed_at"] <= killed_at + 0.05 <= entry["detected_at"] <= entry["completed_at"]
    assert room["last_relaunch"]["completed_at"] == entry["completed_at"]  # last_relaunch stays
    listed = {r["room"]: r for r in stack.http("GET", stack.url("control-1", "/rooms"))[1]}
    assert listed["launch"]["relaunch_history"] == room["relaunch_history"]

    status, history = stack.http("GET", stack.url("crowd-1", "/history?room=launch"))
    assert status == 200 and history["instance"] == "crowd-1" and history["truncated_listeners"] == 0
    assert abs(history["now"] - time.time()) < 60
    listeners = history["listeners"]
    assert len(listeners) == LISTENERS and len({x["id"] for x in listeners}) == LISTENERS
    for x in listeners:
        assert x["room"] == "launch" and x["active"] and not x["truncated"] and x["joined_at"] < killed_at
        gens = [(s["gen"], s["edge"]) for s in x["segments"]]
        assert gens[0] == (1, first) and gens[-1] == (2, second), gens
        assert all(set(s) == SEGMENT_KEYS for s in x["segments"])
        assert all(a["gen"] <= b["gen"] for a, b in zip(x["segments"], x["segments"][1:]))  # no split brain
        old, new = x["segments"][0], x["segments"][-1]
        # Times are when the crowd read a frame: one sent before the kill can be read later by a starved crowd
        # (0.17 s once, beside a CPU hog), so the kill bounds the new generation only.
        assert old["last_t"] < new["first_t"] and killed_at < new["first_t"] and new["frames"] >= 1
        assert sum(s["dups"] + s["reorders"] for s in x["segments"]) == 0
        kinds = [e["kind"] for e in x["events"]]
        assert kinds[0] == "connect" and "close" in kinds and kinds[-1] == "connect", kinds
    status, everyone = stack.http("GET", stack.url("crowd-1", "/history"))
    assert status == 200 and len(everyone["listeners"]) == LISTENERS + 3
    assert {x["room"] for x in everyone["listeners"]} == {"launch", "elsewhere"}
