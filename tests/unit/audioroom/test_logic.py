"""Decisions of supervisor, control and crowd, against an in-memory stand-in for the state store.

The same behaviours run against real Redis and real processes in tests/local/audioroom.
"""

import time

import pytest

from audioroom import config, control, crowd
from audioroom.state import Room, now_ms
from audioroom.supervisor import Supervisor

ENV = {"RQ_SERVICE": "supervisor", "RQ_ROUTES": "{}", "HEARTBEAT_INTERVAL": "100ms", "HEARTBEAT_TIMEOUT": "500ms",
       "HOST_GRACE": "1s", "LEASE_TTL": "3s", "SHARDS": "4"}


class FakeState:
    def __init__(self, rooms, beats, supervisors=("supervisor-1",)):
        self.rooms_ = {r.room: r for r in rooms}
        self.beats = beats
        self.leases = {}
        self.sups = list(supervisors)
        self.relaunched = []
        self.marked = []

    async def shard_rooms(self, shards):
        return list(self.rooms_.values())

    async def edge_beats(self):
        return dict(self.beats)

    async def pick_edge(self, timeout_s, exclude=""):
        live = [e for e, b in self.beats.items() if b >= now_ms() - timeout_s * 1000 and e != exclude]
        return min(live) if live else None

    async def relaunch(self, room, *, edge, host, backups, state, record, host_head_start_s=0.0):
        self.relaunched.append((room.room, edge, host, backups, state, record["reason"]))
        return room.generation + 1

    async def mark(self, room, state):
        self.marked.append((room.room, state))
        return True

    async def supervisor_heartbeat(self, name):
        pass

    async def live_supervisors(self, window_s):
        return self.sups

    async def renew(self, shard, me, ttl):
        return self.leases.get(shard) == me

    async def release(self, shard, me):
        self.leases.pop(shard, None)

    async def lease_holders(self):
        return {s: self.leases.get(s) for s in range(4)}

    async def acquire(self, shard, me, ttl):
        if shard in self.leases:
            return False
        self.leases[shard] = me
        return True


def room(name, edge="edge-1", host_seen_ago=0.0, backups=("bob",), state="live"):
    return Room(name, state, edge, "alice", list(backups), 1, 0, None, now_ms() - host_seen_ago * 1000)


def supervisor(fake, watched_for=60.0):
    """A supervisor holding shard 0 that has seen the store answer without a break for ``watched_for`` s."""
    sup = Supervisor(config.load(ENV), fake)
    sup.held = {0}
    sup.store.since, sup.store.last = time.monotonic() - watched_for, time.monotonic()
    return sup


async def test_dead_edge_relaunches_on_a_live_one_and_a_lost_host_moves_to_the_backup():
    now = now_ms()
    fake = FakeState(
        [room("a"), room("b", edge="edge-2", host_seen_ago=2), room("c", edge="edge-2", host_seen_ago=2, backups=()),
         room("d", edge="edge-2", host_seen_ago=0.2)],
        {"edge-1": now - 2000, "edge-2": now - 50},
    )
    await supervisor(fake).check()
    assert sorted(fake.relaunched) == [
        ("a", "edge-2", "alice", ["bob"], "live", "edge_lost"),
        ("b", "edge-2", "bob", [], "live", "host_lost"),
        ("c", "edge-2", "alice", [], "ended", "host_lost"),
    ]


async def test_no_live_edge_marks_the_room_relaunching_and_retries():
    fake = FakeState([room("a")], {"edge-1": now_ms() - 2000})
    await supervisor(fake).check()
    assert fake.marked == [("a", "relaunching")] and fake.relaunched == []


async def test_a_relaunching_room_goes_back_to_its_edge_once_that_edge_is_alive_again():
    fake = FakeState([room("a", state="relaunching")], {"edge-1": now_ms() - 50})
    await supervisor(fake).check()
    assert fake.relaunched == [("a", "edge-1", "alice", ["bob"], "live", "edge_lost")]


async def test_leases_follow_the_fair_share_of_live_supervisors():
    fake = FakeState([], {}, supervisors=["supervisor-1"])
    sup = Supervisor(config.load(ENV), fake)
    await sup.leases()
    assert sup.held == {0, 1, 2, 3}
    fake.sups = ["supervisor-1", "supervisor-2"]
    await sup.leases()
    assert len(sup.held) == 2 and set(fake.leases) == sup.held  # released the rest for the newcomer


def test_create_requests_are_validated_field_by_field():
    assert control.validate_create({"room": "launch", "host": "alice", "backups": ["bob"]}) == ("launch", "alice", ["bob"])
    for body, field in [({"room": "", "host": "a"}, "room"), ({"room": "x y", "host": "a"}, "room"),
                        ({"room": "r"}, "host"), ({"room": "r", "host": "a", "backups": "b"}, "backups"),
                        ({"room": "r", "host": "a", "backups": ["a"]}, "backups"), ([], "body")]:
        with pytest.raises(ValueError, match=f"^{field}"):
            control.validate_create(body)


def test_join_failure_reasons_are_a_small_fixed_set():
    assert crowd.join_failure_reason(503, {"reason": "state unreachable: TimeoutError"}) == "state_unreachable"
    assert crowd.join_failure_reason(503, {"reason": "room 'x' is relaunching"}) == "relaunching"
    assert crowd.join_failure_reason(0, {}) == "control_unreachable"
    assert crowd.join_failure_reason(410, {}) == "ended"
    assert crowd.join_failure_reason(500, "oops") == "http_500"


class FakeCrowd:
    def __init__(self, seed=1):
        self.settings = config.load({"RQ_SERVICE": "crowd", "RQ_INSTANCE": "crowd-1", "RQ_ROUTES": "{}",
                                     "CROWD_SEED": str(seed), "CROWD_BACKOFF_BASE": "100ms", "CROWD_BACKOFF_MAX": "1s"})
        self.stats = crowd.Stats.__new__(crowd.Stats)  # no registry: collectors register once per process
        from audioroom.fasthist import DELAY_BOUNDS_MS, GAP_BOUNDS_MS, JOIN_BOUNDS_MS, FastHistogram
        self.stats.delay, self.stats.gap, self.stats.join = (FastHistogram(b) for b in
                                                             (DELAY_BOUNDS_MS, GAP_BOUNDS_MS, JOIN_BOUNDS_MS))
        self.stats.frames = self.stats.lost = self.stats.out_of_order = 0
        self.stats.rooms = {}


def frame(gen, seq, age_ms=10.0):
    from audioroom import frames
    return frames.encode(frames.Frame("launch", gen, seq, time.time() * 1000 - age_ms), 160)


def test_listeners_measure_delay_loss_order_and_relaunch_recovery():
    fake = FakeCrowd()
    a, b = crowd.Listener(fake, "launch", 0), crowd.Listener(fake, "launch", 1)
    for seq in (0, 1, 2, 4, 3):  # 3 lost... then arrives late
        a.on_frame(frame(1, seq))
    b.on_frame(frame(1, 0))
    a.on_frame(frame(2, 0))  # the room was relaunched; a came back, b did not
    s, track = fake.stats, fake.stats.rooms["launch"]
    assert (s.frames, s.lost, s.out_of_order) == (7, 1, 1)
    assert s.delay.at_most(25) == 7
    summary = track.summary()
    assert summary["members"] == {1: 2, 2: 1}
    assert summary["relaunches"][0] | {"at": 0, "outage_s": 0} == {
        "from": 1, "to": 2, "at": 0, "outage_s": 0, "before": 2, "back": 1, "fraction_back": 0.5}


def test_backoff_is_full_jitter_bounded_and_seeded():
    one, two = crowd.Listener(FakeCrowd(5), "r", 3), crowd.Listener(FakeCrowd(5), "r", 3)
    delays = [one.backoff(n) for n in range(1, 12)]
    assert delays == [two.backoff(n) for n in range(1, 12)]  # same seed, same listener: same schedule
    assert all(0 <= d <= min(1.0, 0.1 * 2**n) for n, d in enumerate(delays, 1))
    other = crowd.Listener(FakeCrowd(6), "r", 3)
    assert [other.backoff(n) for n in range(1, 12)] != delays


async def test_a_listener_drained_while_its_join_completes_leaves_instead_of_staying_connected():
    # stop() cancels a joining task, but wait_for returns a connect that finished as the cancel
    # arrived (CPython 3.11): the listener then held its slot until the process ended
    fake = FakeCrowd()
    fake.connected = 0
    closed = []

    class Proto:
        def close(self, code=1000, reason=""):
            closed.append((code, reason))

    class DrainedWhileJoining(crowd.Listener):
        __slots__ = ()

        async def join(self):
            self.stop()
            return Proto(), ""

    listener = DrainedWhileJoining(fake, "launch", 0)
    await listener.run(0)
    assert closed == [(1000, "drained")]
    assert fake.connected == 0 and listener.proto is None


class FailingState(FakeState):
    """The store stalls: every call fails the way redis-py fails on a socket timeout."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.down = False

    async def shard_rooms(self, shards):
        if self.down:
            from redis.exceptions import TimeoutError as RedisTimeout
            raise RedisTimeout("Timeout reading from socket")
        return await super().shard_rooms(shards)


async def test_right_after_the_store_answers_again_old_beats_and_old_host_reports_relaunch_nothing():
    # beats 3 s old: the store was stalled, nobody's beat could land
    now = now_ms()
    fake = FailingState([room("a"), room("b", edge="edge-2", host_seen_ago=3)], {"edge-1": now - 3000, "edge-2": now - 3000})
    sup = supervisor(fake, watched_for=60.0)
    fake.down = True
    with pytest.raises(Exception, match="Timeout"):
        await sup.check()
    fake.down = False
    await sup.check()  # the store answers again: edges have had no chance to beat yet
    assert fake.relaunched == [] and fake.marked == []
    # edge-2 beats again; edge-1 never does: after HEARTBEAT_TIMEOUT (0.5 s) of unbroken view edge-1 is lost,
    # and after HOST_GRACE (1 s) b's host, still unreported, is lost too
    fake.beats["edge-2"] = now_ms()
    sup.store.since = time.monotonic() - 0.6
    await sup.check()
    assert [r[0] for r in fake.relaunched] == ["a"]
    fake.rooms_.pop("a")  # relaunched (the fake does not move it)
    sup.store.since = time.monotonic() - 1.1
    fake.beats["edge-2"] = now_ms()
    await sup.check()
    assert [(r[0], r[5]) for r in fake.relaunched] == [("a", "edge_lost"), ("b", "host_lost")]


def test_the_store_watch_counts_only_unbroken_time():
    from audioroom.supervisor import StoreWatch

    watch = StoreWatch(max_break=0.5)
    assert watch.watched_for(10.0) == 0.0
    watch.answered(10.0)
    watch.answered(10.4)
    assert watch.watched_for(10.6) == pytest.approx(0.6)
    watch.answered(11.2)  # 0.8 s without an answer (a stall between calls, or this process starved): a break
    assert watch.watched_for(11.2) == 0.0
    watch.answered(11.5)
    watch.failed()
    assert watch.watched_for(11.6) == 0.0
