"""The state store crashes (kill -9) and comes back on the same port.

(a) With its data (AOF persistence): rooms survive. An outage shorter than
    the edges' lease drops nobody; a longer one makes the edges fence
    themselves, and once the store is back the host streams again and the
    listeners return, to the same room and generation.
(b) Empty (no persistence): rooms are lost, as before, but nothing crashes or
    spins: every service reconnects, logs the outage in a line or two, the
    edge closes the room as gone, the host stops streaming it, listeners who
    had heard it stop, control says 404, and a new room works.

Shipped ci profile (docker/stack.yaml: LEASE_TTL, STATE_TIMEOUT, backoff) with
the conftest's TOLERANT detection thresholds (HEARTBEAT_TIMEOUT, HOST_GRACE),
so that a starved process on a loaded machine does not relaunch the room
before the crash; real redis-server.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from .conftest import TOLERANT, stack_profile

BASE = {"edge": 2, "control": 1, "supervisor": 2, "host": 2, "crowd": 1}
ACCOUNTS = {"host-1": {"HOST_ACCOUNT": "alice"}, "host-2": {"HOST_ACCOUNT": "bob"}}
LISTENERS = 60
SERVICES = ["edge-1", "edge-2", "control-1", "supervisor-1", "supervisor-2", "host-1", "host-2", "crowd-1"]


def start(make_stack, persist_dir: Path | None):
    env = {**stack_profile("ci"), "HEARTBEAT_TIMEOUT": TOLERANT["HEARTBEAT_TIMEOUT"], "HOST_GRACE": TOLERANT["HOST_GRACE"]}
    stack = make_stack(BASE, env=env, per_instance=ACCOUNTS)
    if persist_dir is not None:  # the fixture started it without persistence: start it again with AOF
        stack.kill("state")
        stack.start_state(persist_dir)
    stack.start_all(["edge-1", "control-1"])
    stack.start_all(["edge-2", "supervisor-1", "supervisor-2", "host-1", "host-2", "crowd-1"])
    status, body = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": ["bob"]})
    assert status == 201, body
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": LISTENERS, "ramp_s": 1})
    stack.wait_for(lambda: stack.stats()["hearing"] == LISTENERS, 60, f"all {LISTENERS} listeners hearing")
    time.sleep(1.5)  # past the AOF's once-a-second fsync: the room is on disk
    return stack


def all_running(stack) -> None:
    for name in SERVICES:
        assert stack.procs[name].popen.poll() is None, f"{name} exited:\n{stack.log_tail(name)}"


def outage(stack, seconds: float, persist_dir: Path | None) -> None:
    stack.kill("state")  # SIGKILL: no goodbye, connections reset
    time.sleep(seconds)
    stack.start_state(persist_dir)


def streaming(stack, account_host: str = "host-1") -> list[dict]:
    return [s for s in stack.http("GET", stack.url(account_host, "/rooms"))[1] if s["connected"]]


def test_a_store_that_comes_back_with_its_data_keeps_the_rooms_and_everyone_returns(make_stack, tmp_path):
    aof = tmp_path / "aof"
    aof.mkdir()
    stack = start(make_stack, aof)
    room = stack.room("launch")
    lease = stack.seconds("LEASE_TTL")

    # shorter than the lease: the edge keeps its room, listeners keep hearing, nothing relaunches
    outage(stack, lease / 3, aof)
    stack.wait_for(lambda: stack.http("POST", stack.url("control-1", "/rooms/launch/join"))[0] == 200, 5,
                   "joins to succeed again")
    time.sleep(stack.seconds("HEARTBEAT_TIMEOUT") + stack.seconds("HOST_GRACE"))
    stats = stack.stats()
    assert (stats["connected"], stats["reconnects"]) == (LISTENERS, 0), stats
    assert stack.room("launch")["generation"] == room["generation"]

    # longer than the lease: the edges fence themselves; when the store is back, everyone returns
    outage(stack, lease + 1.5, aof)
    deadline = 2 * stack.seconds("HEARTBEAT_TIMEOUT") + 2 * stack.seconds("CROWD_BACKOFF_MAX") + 10
    stack.wait_for(lambda: stack.stats()["hearing"] == LISTENERS, deadline, "every listener hearing again")
    stack.wait_for(lambda: streaming(stack), deadline, "alice streaming again")
    after = stack.room("launch")
    assert (after["generation"], after["edge"], after["host"], after["relaunches"]) == (
        room["generation"], room["edge"], "alice", 0), after
    assert stack.metric(room["edge"], "edge_fenced_total") == 1
    stats = stack.stats()
    assert stats["reconnects"] >= LISTENERS and stats["room_gone"] == 0 and stats["gave_up"] == 0
    assert stack.http("POST", stack.url("control-1", "/rooms/launch/join"))[0] == 200
    all_running(stack)


def test_a_store_that_comes_back_empty_loses_the_rooms_and_every_service_says_so_without_spinning(make_stack):
    stack = start(make_stack, None)
    edge = stack.room("launch")["edge"]
    outage(stack, 1.0, None)

    deadline = 4 * stack.seconds("HEARTBEAT_TIMEOUT") + 2 * stack.seconds("CROWD_BACKOFF_MAX") + 10
    stack.wait_for(lambda: stack.http("GET", stack.url("control-1", "/rooms/launch"))[0] == 404, deadline,
                   "control to report the room gone")
    stack.wait_for(lambda: stack.stats()["room_gone"] == LISTENERS, deadline, "every listener told the room is gone")
    stack.wait_for(lambda: stack.http("GET", stack.url("host-1", "/rooms"))[1] == [], deadline,
                   "alice to stop streaming it")
    assert stack.metric(edge, "edge_rooms_gone_total") == 1
    # services reconnected: healthy, supervisors hold every shard again, a new room works end to end
    shards = int(stack.env["SHARDS"])
    stack.wait_for(lambda: sum(stack.metric(s, "supervisor_leases_held") for s in ("supervisor-1", "supervisor-2"))
                   == shards, deadline, "every shard leased again")
    for name in SERVICES:
        assert stack.http("GET", stack.url(name, "/health"))[0] == 200, name
    status, body = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "again", "backups": []})
    assert status == 201, body
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "again", "listeners": 5, "ramp_s": 0})
    stack.wait_for(lambda: stack.stats()["rooms"].get("again", {}).get("members", {}).get("1") == 5, deadline,
                   "new listeners hearing a new room")

    # nothing spins: a few seconds later the gone room costs nobody anything, and the logs stay short
    joins = stack.stats()["joins"]["attempted"]
    time.sleep(2 * stack.seconds("CROWD_BACKOFF_MAX"))
    assert stack.stats()["joins"]["attempted"] == joins
    assert stack.room("again")["generation"] == 1
    for name in SERVICES:
        log = stack.procs[name].log.read_text(errors="replace")
        assert "Traceback" not in log, (name, log[-2000:])
        assert len(log.splitlines()) <= 8, (name, log)
    host_log = stack.procs["host-1"].log.read_text()
    assert host_log.count("stopped streaming launch: gone") == 1, host_log
    assert stack.procs[edge].log.read_text().count("room launch is unknown to the state store") == 1
    all_running(stack)
