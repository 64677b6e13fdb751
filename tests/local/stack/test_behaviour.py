"""Issue 4's behaviour, proven on the real reference stack brought up as local processes.

One stack serves the whole module (ci profile, EDGE_CAPACITY lowered so the
overload test can reach it with a small crowd); every test uses its own
room and puts back what it broke. Timings are read from the stack's
profile and asserted as orderings with margins, never as absolute speeds.
"""

from __future__ import annotations

import os
import re
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from roomquake_testutil import until

from chaos.stack.probes import get_json
from chaos.stack import bring_up
from chaos.stack.health import wait_all

STACK = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"
CAPACITY = 40
LISTENERS = 12


def seconds(text: str) -> float:
    value, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", text).groups()  # type: ignore[union-attr]
    return float(value) / (1000 if unit == "ms" else 1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    old = os.environ.get("ROOMQUAKE_STATE_DIR")
    os.environ["ROOMQUAKE_STATE_DIR"] = str(tmp_path_factory.mktemp("runs"))
    try:
        with bring_up(STACK, backend="local", profile="ci", env={"edge": {"EDGE_CAPACITY": CAPACITY}}) as running:
            yield running
    finally:
        if old is None:
            os.environ.pop("ROOMQUAKE_STATE_DIR", None)
        else:
            os.environ["ROOMQUAKE_STATE_DIR"] = old


@pytest.fixture(scope="module")
def timing(stack) -> dict[str, float]:
    env = stack.spec.profile_env("ci")
    return {k: seconds(v) for k, v in env.items()}


def crowd_room(stack, room: str) -> dict[str, Any]:
    stats = get_json(*stack.address("crowd-1"), "/stats") or {}
    return stats.get("rooms", {}).get(room, {})


def on_generation(stack, room: str, generation: int) -> int:
    return int(crowd_room(stack, room).get("members", {}).get(str(generation), 0))


def start_room(stack, room: str, listeners: int = LISTENERS) -> None:
    stack.load("start", room=room, listeners=listeners, ramp_s=0.5)
    until(lambda: stack.probe("room.state", room=room) == "live", 10, f"room {room} live")
    gen = stack.probe("room.generation", room=room)
    until(lambda: on_generation(stack, room, gen) >= listeners, 15, f"{listeners} listeners on {room}")


def bring_back(stack, *names: str) -> None:
    for name in names:
        stack.start(name)
    wait_all([(n, stack.spec.services[stack.plan.instance(n).service].health, lambda n=n: stack.address(n)) for n in names],
             secrets=stack.secrets)


@pytest.fixture(autouse=True)
def drained(stack):
    yield
    stack.load("drain", fraction=1.0)


def test_host_streams_listeners_receive_frames_in_order_with_delay_reported(stack):
    start_room(stack, "r-stream")
    time.sleep(1.0)
    stats = get_json(*stack.address("crowd-1"), "/stats")
    frames = stats["frames"]
    assert frames["received"] >= LISTENERS * 3
    assert frames["lost"] == 0 and frames["out_of_order"] == 0
    delay = stack.probe("crowd.frame_delay_p50", window="cumulative")  # windowed by default: one read has no window yet
    assert delay is not None and delay >= 0
    assert stack.probe("crowd.join_success_ratio") > 0
    assert stack.probe("room.host", room="r-stream") == "account-1"


def test_killing_the_hosting_edge_relaunches_the_room_elsewhere_and_everyone_follows(stack, timing):
    room = "r-edge"
    start_room(stack, room)
    [edge] = stack.select("hosting", room=room)
    before = stack.probe("room.relaunches", room=room)
    killed_at = time.monotonic()
    stack.kill(edge)
    moved_to = until(lambda: (e := stack.probe("room.edge", room=room)) != edge and e, 10 * timing["HEARTBEAT_TIMEOUT"], "relaunch")
    took = time.monotonic() - killed_at
    assert moved_to != edge and stack.instances("edge")[int(moved_to.rsplit("-", 1)[1]) - 1].state == "running"
    assert stack.probe("room.relaunches", room=room) == before + 1
    assert stack.probe("room.relaunch_reason", room=room) == "edge_lost"
    # Detection is by missed heartbeats: it cannot beat the configured timeout.
    assert took >= 0.8 * timing["HEARTBEAT_TIMEOUT"]
    relaunch_time = stack.probe("room.relaunch_time", room=room)
    assert relaunch_time >= 0.8 * timing["HEARTBEAT_TIMEOUT"]
    # Host and listeners follow: frames of the new generation reach (almost) everyone.
    gen = stack.probe("room.generation", room=room)
    until(lambda: on_generation(stack, room, gen) >= 0.9 * LISTENERS, 15, "listeners on the new generation")
    fraction = until(lambda: stack.probe("crowd.room_fraction_back", room=room), 10, "fraction back reported")
    assert fraction >= 0.9
    assert stack.probe("crowd.room_outage", room=room) > 0
    bring_back(stack, edge)


def edge_timeouts(stack) -> int:
    return int(get_json(*stack.address("crowd-1"), "/stats")["joins"]["failed"].get("edge_timeout", 0))


def test_listeners_joining_a_paused_edge_time_out_and_find_the_relaunch_while_it_is_still_paused(stack, timing):
    # The ci profile's CROWD_CONNECT_TIMEOUT (not the 10 s default) bounds how long a
    # listener hangs in a handshake with a frozen edge before it asks control again.
    room, connect = "r-paused", timing["CROWD_CONNECT_TIMEOUT"]
    assert connect < 10.0
    start_room(stack, room, listeners=2)
    [edge] = stack.select("hosting", room=room)
    gen = stack.probe("room.generation", room=room)
    timeouts_before = edge_timeouts(stack)
    stack.pause(edge)
    try:
        surged_at = time.monotonic()
        stack.load("surge", room=room, listeners=LISTENERS, over_s=0)  # routed to the frozen edge until detection
        new_gen = until(lambda: (g := stack.probe("room.generation", room=room)) > gen and g,
                        10 * timing["HEARTBEAT_TIMEOUT"], "relaunch away from the paused edge")
        # the newcomers hung in the handshake, gave it up after the connect timeout and joined the relaunched room
        until(lambda: on_generation(stack, room, new_gen) >= LISTENERS,
              2 * connect + timing["CROWD_BACKOFF_MAX"] + 10 * timing["HEARTBEAT_TIMEOUT"], "newcomers on the relaunch")
        took = time.monotonic() - surged_at
        assert edge_timeouts(stack) > timeouts_before
        assert took >= 0.8 * connect  # they did wait for the handshake: the timeout, not luck, freed them
        assert next(i.state for i in stack.instances("edge") if i.name == edge) == "paused"
    finally:
        stack.resume(edge)


def test_host_loss_moves_the_room_to_the_backup_account_after_the_grace_period(stack, timing):
    room = "r-host"
    start_room(stack, room)
    killed_at = time.monotonic()
    stack.kill("host-1")
    until(lambda: stack.probe("room.host", room=room) == "account-2", 10 * timing["HOST_GRACE"], "relaunch under account-2")
    took = time.monotonic() - killed_at
    assert took >= 0.8 * timing["HOST_GRACE"]  # not before the grace period
    assert stack.probe("room.relaunch_reason", room=room) == "host_lost"
    assert stack.probe("room.state", room=room) == "live"
    gen = stack.probe("room.generation", room=room)
    # the backup host streams: listeners get frames of the new generation
    until(lambda: on_generation(stack, room, gen) >= 0.8 * LISTENERS, 15, "listeners following the backup host")
    fraction = until(lambda: stack.probe("crowd.room_fraction_back", room=room), 10, "fraction back reported")
    assert fraction >= 0.8
    bring_back(stack, "host-1")


def test_overload_sheds_listeners_as_kicked_and_they_rejoin(stack):
    room = "r-over"
    kicks_before = stack.probe("crowd.kicks") or 0
    attempts_before = get_json(*stack.address("crowd-1"), "/stats")["joins"]["attempted"]
    stack.load("room", room=room)
    until(lambda: stack.probe("room.state", room=room) == "live", 10, "room live")
    stack.load("surge", room=room, listeners=CAPACITY * 2, over_s=0.5)
    until(lambda: (stack.probe("crowd.kicks") or 0) > kicks_before, 20, "kicks counted by the crowd")
    assert (stack.probe("edge.kicks") or 0) > 0
    [edge] = stack.select("hosting", room=room)
    host, port = stack.address(edge)
    listeners = get_json(host, port, "/health")["listeners"]
    assert listeners <= CAPACITY  # the edge holds its limit
    # Kicked listeners try again (backoff), so joins keep being attempted.
    until(lambda: get_json(*stack.address("crowd-1"), "/stats")["joins"]["attempted"] > attempts_before + CAPACITY * 2,
          20, "rejoins after kicks")


def shard_owner(stack, room: str) -> str | None:
    shard = zlib.crc32(room.encode()) % int(stack.spec.profiles["ci"].get("SHARDS", 16))
    for inst in stack.instances("supervisor"):
        health = get_json(*stack.address(inst.name), "/health") or {}
        if shard in health.get("leases", []):
            return inst.name
    return None


def time_to_relaunch(stack, room: str, timeout: float) -> float:
    [edge] = stack.select("hosting", room=room)
    killed_at = time.monotonic()
    stack.kill(edge)
    until(lambda: (e := stack.probe("room.edge", room=room)) not in (None, edge), timeout, f"relaunch of {room}")
    took = time.monotonic() - killed_at
    bring_back(stack, edge)
    return took


def test_staff_reduction_one_supervisor_of_four_recovers_measurably_slower(stack, timing):
    lease = timing["LEASE_TTL"]
    start_room(stack, "r-staff-all", listeners=2)
    with_all = time_to_relaunch(stack, "r-staff-all", 10 * lease)
    room = "r-staff-one"
    start_room(stack, room, listeners=2)
    owner = until(lambda: shard_owner(stack, room), 3 * lease, "the supervisor holding the room's shard")
    supervisors = [i.name for i in stack.instances("supervisor")]
    survivor = next(s for s in supervisors if s != owner)
    removed = [s for s in supervisors if s != survivor]
    for name in removed:  # SIGKILL: no clean lease hand-over, as when staff are let go
        stack.kill(name)
    assert stack.probe("supervisor.running") == 1
    with_one = time_to_relaunch(stack, room, 10 * lease)
    bring_back(stack, *removed)
    print(f"time to relaunch: all 4 supervisors {with_all:.2f}s, 1 of 4 {with_one:.2f}s (LEASE_TTL {lease}s)")
    # The room's shard was held by a removed supervisor: recovery waits for its lease to expire.
    assert with_one > with_all + 0.25 * lease


def edge_state_proxies(stack) -> list[str]:
    return [link.name for link in stack.links() if link.link == "edge->state"]


def sample_room(stack, room: str, seconds_: float) -> list[tuple[str | None, str | None]]:
    seen = []
    deadline = time.monotonic() + seconds_
    while time.monotonic() < deadline:
        seen.append((stack.probe("room.state", room=room), stack.probe("room.edge", room=room)))
        time.sleep(0.1)
    return seen


def test_latency_on_edge_to_state_below_detection_causes_no_false_relaunch(stack, timing):
    room = "r-lat-low"
    start_room(stack, room, listeners=4)
    relaunches = stack.probe("supervisor.relaunches")
    latency_ms = int(0.3 * timing["HEARTBEAT_TIMEOUT"] * 1000)
    with stack.proxy_client() as client:
        for proxy in edge_state_proxies(stack):
            client.add_toxic(proxy, "latency", attributes={"latency": latency_ms, "jitter": 0}, name="slow")
        try:
            seen = sample_room(stack, room, 4 * timing["HEARTBEAT_TIMEOUT"])
        finally:
            for proxy in edge_state_proxies(stack):
                client.remove_toxic(proxy, "slow")
    assert {state for state, _ in seen} == {"live"}
    assert len({edge for _, edge in seen}) == 1
    assert stack.probe("supervisor.relaunches") == relaunches


def test_latency_above_detection_declares_live_edges_dead_flapping_is_measured(stack, timing, record_property):
    """Latency above HEARTBEAT_TIMEOUT on edge->state (all edges share it): what happens, measured.

    Every edge's heartbeat now takes longer than the timeout (and its Redis
    socket timeout): supervisors see no fresh beat and declare edges dead
    that are alive, and each edge fences itself, dropping its rooms (4004).
    Whether a room is relaunched depends on whether some edge's beat looked
    fresh at that moment, so the outcome alternates between relaunches to
    another (equally slow) edge and rooms stuck without a live edge: flapping.
    We assert the failure mode exists (a live edge declared dead: a relaunch,
    a fence, or the room marked relaunching with no live edge to go to), record the figures, and that the room settles once the
    latency is gone.
    """
    room = "r-lat-high"
    start_room(stack, room, listeners=4)
    relaunches = stack.probe("supervisor.relaunches")
    room_relaunches = stack.probe("room.relaunches", room=room)
    fenced = stack.probe("edge.fenced") or 0
    latency_ms = int(1.5 * timing["HEARTBEAT_TIMEOUT"] * 1000)
    window = 6 * timing["HEARTBEAT_TIMEOUT"]
    with stack.proxy_client() as client:
        for proxy in edge_state_proxies(stack):
            client.add_toxic(proxy, "latency", attributes={"latency": latency_ms, "jitter": 0}, name="slow")
        try:
            seen = sample_room(stack, room, window)
        finally:
            for proxy in edge_state_proxies(stack):
                client.remove_toxic(proxy, "slow")
    false_relaunches = stack.probe("supervisor.relaunches") - relaunches
    fences = (stack.probe("edge.fenced") or 0) - fenced
    changes = sum(1 for a, b in zip(seen, seen[1:]) if a != b)
    states = sorted({str(s) for s, _ in seen})
    measured = (f"latency {latency_ms}ms on edge->state for {window:.0f}s (HEARTBEAT_TIMEOUT "
                f"{timing['HEARTBEAT_TIMEOUT']}s): {false_relaunches:.0f} relaunches with no edge dead, this room "
                f"{stack.probe('room.relaunches', room=room) - room_relaunches} times, {fences:.0f} edge fences, "
                f"{changes} state/edge changes seen, states {states}")
    print(measured)
    record_property("flapping", measured)
    # No edge died, yet live edges were declared dead: relaunched away from, fenced, or the room marked
    # relaunching (its edge judged lost with no live edge left to move to: every edge's beats are late).
    assert false_relaunches + fences >= 1 or "relaunching" in states, measured
    # ... and once the latency is gone the room settles live again.
    until(lambda: stack.probe("room.state", room=room) == "live", 10 * timing["HEARTBEAT_TIMEOUT"], "room live again")
