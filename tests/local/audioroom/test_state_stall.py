"""A state-store stall shorter than the lease: nothing is relaunched, nobody is dropped, joins come back.

Redis is paused (SIGSTOP) for 3 s under 150 listeners, with the shipped ci
profile (docker/stack.yaml); the shipped experiment state-stall.yaml does the
same under 300 on either backend. Edges keep their rooms while their
lease (LEASE_TTL) lasts; supervisors do not count the time they could not
watch the store against anyone's heartbeat; the host keeps streaming to its
edge, so listeners keep hearing it. Joins fail fast (503) during the stall
and succeed again right after it.

Two variants, each making one guard decisive (checked by disabling it: the
variant then fails):
- ``ci``: the shipped profile. Its HEARTBEAT_TIMEOUT (1 s, also the edge's
  Redis timeout) makes the edges' heartbeats fail within the stall, so
  without the lease they would fence and drop everyone. (The heartbeat they
  retry lands right at the resume, about HEARTBEAT_TIMEOUT old, so whether
  supervisors would relaunch without their guard is a coin toss here.)
  The supervisors detect at 2.5 s here (HEARTBEAT_TIMEOUT and HOST_GRACE),
  the edges keep the profile's 1 s: in a CI run at load 12-16 an edge's
  loop, busy with the newcomers right after the resume, landed no beat for
  1.28 s and the room was relaunched, the load's doing and not the stall's;
  the edges' own 1 s is what this variant is about.
- ``ci, stale beats``: the same with HEARTBEAT_TIMEOUT and HOST_GRACE at
  2.5 s, still shorter than the stall: an edge's one heartbeat in flight
  spans the stall, so every beat and host report is about 3 s old when the
  store answers again, and without the supervisors' guard they relaunch.
The premise is an edge whose lease is fresh when the stall begins. On a
machine so loaded that an edge misses its heartbeats (in CI beside a CPU hog,
with 300 listeners, an edge's last beat was once old enough for its lease to
run out a second into the stall), the room can be relaunched or the lease
short before the stall: the setup then waits for the stack to settle (the
room unmoved, every edge's last heartbeat younger than HEARTBEAT_FRESH_S) and
starts over (a few times), and the counts compared are those taken right
before the stall.
"""

from __future__ import annotations

import signal
import time

import pytest

from .conftest import stack_profile

LISTENERS = 150
NEWCOMERS = 20
STALL_S = 3.0
JOINS_BACK_WITHIN_S = 5.0  # the requirement (issue 10): joins succeed again within 5 s of the resume
NEWCOMER_BACKOFF_ROUNDS = 4  # the newcomers' deadline: that, plus this many of the crowd's longest backoffs
SETUP_TRIES = 4
HEARTBEAT_FRESH_S = 1.0  # an edge's last heartbeat at most this old right before the stall (ci beats every 200 ms)
BASE = {"edge": 2, "control": 1, "supervisor": 2, "host": 2, "crowd": 1}
ACCOUNTS = {"host-1": {"HOST_ACCOUNT": "alice"}, "host-2": {"HOST_ACCOUNT": "bob"}}
SERVICES_WITH_STATE = ("edge-1", "edge-2", "supervisor-1", "supervisor-2")


def seconds(raw: str) -> float:
    return float(raw[:-2]) / 1000 if raw.endswith("ms") else float(raw.rstrip("s"))


def test_the_ci_profile_rides_out_a_3s_stall():
    """The timings that make this work: the edge's lease must outlast the stall plus a heartbeat
    round, and joins fail fast (2 x STATE_TIMEOUT) well within the deadline."""
    ci = {k: seconds(v) for k, v in stack_profile("ci").items() if k in (
        "LEASE_TTL", "HEARTBEAT_INTERVAL", "HEARTBEAT_TIMEOUT", "STATE_TIMEOUT", "HOST_GRACE")}
    assert ci["LEASE_TTL"] >= STALL_S + ci["HEARTBEAT_INTERVAL"] + 1.0  # a second of margin for a starved edge
    assert 2 * ci["STATE_TIMEOUT"] < JOINS_BACK_WITHIN_S
    # what makes this test meaningful: a heartbeat fails within the stall (one try and one retry of
    # HEARTBEAT_TIMEOUT each), and the detection thresholds are shorter than the stall
    assert 2 * ci["HEARTBEAT_TIMEOUT"] < STALL_S
    assert ci["HEARTBEAT_TIMEOUT"] < STALL_S and ci["HOST_GRACE"] < STALL_S


def connected_and_hearing(stack) -> tuple[int, int]:
    stats = stack.stats()
    return stats["connected"], stats["hearing"]


def counts(stack) -> dict:
    """What must not change across the stall."""
    room, stats = stack.room("launch"), stack.stats()
    return {
        "room": (room["generation"], room["relaunches"], room["edge"], room["host"]),
        "supervisor_relaunches": sum(stack.metric(s, "supervisor_relaunches_total") for s in SERVICES_WITH_STATE[2:]),
        "fenced": sum(stack.metric(e, "edge_fenced_total") for e in SERVICES_WITH_STATE[:2]),
        "reconnects": stats["reconnects"],
        "silences": stats["silences"],
    }


def detection(stack) -> float:
    """The supervisors' detection threshold plus their host grace: how long a room must stay unmoved."""
    own = stack.per_instance.get("supervisor-1", {})
    return sum(seconds(own[v]) if v in own else stack.seconds(v) for v in ("HEARTBEAT_TIMEOUT", "HOST_GRACE"))


def settled(stack) -> dict:
    """Everyone hearing, and the room unmoved for a detection threshold and a grace; the counts then."""
    quiet = detection(stack)
    load = open("/proc/loadavg").read().split()[0]
    for _ in range(SETUP_TRIES):
        stack.wait_for(lambda: connected_and_hearing(stack) == (LISTENERS, LISTENERS), 60,
                       f"all {LISTENERS} listeners connected and hearing")
        before = counts(stack)
        time.sleep(quiet)
        if (counts(stack) == before and connected_and_hearing(stack) == (LISTENERS, LISTENERS)
                and heartbeat_age(stack) < HEARTBEAT_FRESH_S):
            return before
        load = open("/proc/loadavg").read().split()[0]
    pytest.fail(f"the stack never settled for {quiet}s before the stall ({SETUP_TRIES} tries, machine load {load}):"
                f" last relaunch {stack.room('launch')['last_relaunch']}, oldest edge heartbeat {heartbeat_age(stack):.2f}s")


def heartbeat_age(stack) -> float:
    """The oldest of the edges' last heartbeats, in seconds (their lease runs from it)."""
    ages = []
    for edge in SERVICES_WITH_STATE[:2]:
        status, body = stack.http("GET", stack.url(edge, "/health"), timeout=5)
        ages.append(float(body["heartbeat_age_s"]) if isinstance(body, dict) and "heartbeat_age_s" in body else float("inf"))
    return max(ages)


def joins_ok(stack) -> bool:
    return stack.http("POST", stack.url("control-1", "/rooms/launch/join"), timeout=5)[0] == 200


STALE_BEATS = {"HEARTBEAT_TIMEOUT": "2500ms", "HOST_GRACE": "2500ms"}
SUPERVISORS_AT_STALE_BEATS = {"supervisor-1": STALE_BEATS, "supervisor-2": STALE_BEATS}


@pytest.mark.parametrize("override, supervisors", [({}, SUPERVISORS_AT_STALE_BEATS), (STALE_BEATS, {})],
                         ids=["ci", "ci-stale-beats"])
def test_pausing_the_state_store_for_3s_relaunches_nothing_drops_nobody_and_joins_come_back(make_stack, override,
                                                                                           supervisors):
    assert all(seconds(v) < STALL_S for v in override.values())
    stack = make_stack(BASE, env={**stack_profile("ci"), **override}, per_instance={**ACCOUNTS, **supervisors})
    stack.start_all(["edge-1", "control-1"])
    stack.start_all(["edge-2", "supervisor-1", "supervisor-2", "host-1", "host-2", "crowd-1"])
    status, body = stack.http("POST", stack.url("host-1", "/rooms"), {"room": "launch", "backups": ["bob"]})
    assert status == 201, body
    stack.http("POST", stack.url("crowd-1", "/load"), {"room": "launch", "listeners": LISTENERS, "ramp_s": 2})
    before = settled(stack)
    log_lines = {name: len(stack.procs[name].log.read_text(errors="replace").splitlines())
                 for name in (*SERVICES_WITH_STATE, "crowd-1")}

    def logged_since_the_stall() -> dict[str, list[str]]:  # CI shows only the failure's message
        return {name: stack.procs[name].log.read_text(errors="replace").splitlines()[start:][-12:]
                for name, start in log_lines.items()}

    samples = []
    stack.signal("state", signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        # newcomers during the stall: their joins fail (fast), they back off and come in afterwards
        stack.http("POST", stack.url("crowd-1", "/surge"), {"room": "launch", "listeners": NEWCOMERS, "over_s": 0})
        while time.monotonic() - paused_at < STALL_S:
            samples.append(connected_and_hearing(stack))
            time.sleep(0.2)
        status, body = stack.http("POST", stack.url("control-1", "/rooms/launch/join"), timeout=10)
        assert status == 503 and body["reason"].startswith("state unreachable"), body
    finally:
        stack.signal("state", signal.SIGCONT)
    resumed_at = time.monotonic()

    # everyone who was connected stayed connected and kept hearing the host throughout
    assert samples and all(c >= LISTENERS for c, _ in samples), samples
    assert min(h for _, h in samples) >= LISTENERS, samples
    stack.wait_for(lambda: joins_ok(stack), JOINS_BACK_WITHIN_S, "a join through control after the resume")
    # the newcomers were backing off; each asks again within CROWD_BACKOFF_MAX and gets in. The deadline
    # allows a few backoff rounds: beside a CPU hog and the cluster tier (load ~10) a newcomer's first try
    # after the resume can fail again on the edge's handshake (once in CI: not all 20 in within 7 s)
    seen: dict = {}

    def everyone_in() -> bool:
        seen.update(stack.stats())
        return seen["connected"] == LISTENERS + NEWCOMERS

    try:
        stack.wait_for(everyone_in, JOINS_BACK_WITHIN_S + NEWCOMER_BACKOFF_ROUNDS * stack.seconds("CROWD_BACKOFF_MAX"),
                       f"the {NEWCOMERS} newcomers connected")
    except AssertionError as err:
        raise AssertionError(f"{err}; connected {seen.get('connected')} of {LISTENERS + NEWCOMERS}, "
                             f"joins {seen.get('joins')}") from None
    joins_back = time.monotonic() - resumed_at

    # nothing relaunched, no edge fenced itself, nobody reconnected or went silent, during and after
    # (a detection threshold and a grace later)
    time.sleep(detection(stack))
    # The crowd first, then the counts: a listener that left in between (a relaunch or a kick just then,
    # as twice beside a CPU hog: 107 and 155 of 170 with the counts read first unchanged) is in the counts.
    after = stack.stats()
    found = counts(stack)
    if found != before:
        raise AssertionError(f"changed across the stall: {found} != {before}; crowd {after}; "
                             f"logged since the stall: {logged_since_the_stall()}")
    assert after["connected"] == LISTENERS + NEWCOMERS, (
        f"{after['connected']} connected; stats {after}; logged since the stall: {logged_since_the_stall()}")
    assert after["joins"]["failed"].get("state_unreachable", 0) >= 1  # the newcomers met the stall
    # each service logged the outage in a line or two (none if its one call in flight outlasted it)
    for name in SERVICES_WITH_STATE:
        new = stack.procs[name].log.read_text(errors="replace").splitlines()[log_lines[name]:]
        assert len([ln for ln in new if "state store" in ln]) <= 4, (name, new)
    print(f"\nstall {STALL_S}s: samples {len(samples)}, min connected {min(c for c, _ in samples)}, "
          f"min hearing {min(h for _, h in samples)}; newcomers in {joins_back:.2f}s after the resume")
