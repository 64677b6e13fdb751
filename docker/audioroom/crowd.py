"""crowd: simulated listeners that join through control, listen on an edge, and measure.

API (RQ_PORT): ``POST /load {room, listeners, ramp_s}``, ``POST /surge {room,
listeners, over_s}``, ``POST /drain {fraction}``, ``GET /stats`` (JSON),
``GET /history[?room=R]`` (every listener's compact history, ``audioroom.history``),
``/health``, ``/metrics``.

A listener joins (control says which edge and generation), opens a lean
WebSocket (``wsclient``) and measures every frame: end-to-end delay from the
frame's send time, gap since the previous frame, loss and reordering from the
sequence number. When its connection ends it reacts like a person would:
- 4001 kicked: counts a kick, rejoins after exponential backoff with full jitter;
- 4004 moved (the room was relaunched): rejoins through control at once;
- anything else (edge died): rejoins with backoff, asking control again;
- silence (no frame for CROWD_SILENCE_TIMEOUT while connected; the host
  streams continuously, so silence means trouble): asks control where the
  room is; if it is elsewhere (another edge or a newer generation) the
  listener leaves and joins it there at once, otherwise it stays connected
  and asks again later (backoff up to CROWD_SILENCE_TIMEOUT), so an idle but
  healthy room causes no churn;
- the room is gone (410 ended, or 404 after the listener had heard it): the
  listener stops, as a person told "this room has ended" does.
At most CROWD_MAX_JOINING joins are in flight per crowd process (the rest
queue; join latency is measured from the start of the attempt proper).
On each disruption a listener gives up with probability CROWD_GIVE_UP, and
gives up when it has not got back within CROWD_PATIENCE. Every random choice
comes from RNGs seeded by CROWD_SEED, the instance and the listener's index.

Relaunch accounting per room: when a frame of a newer generation arrives, the
outage is the time since the last frame of the old generation ("time to
relaunch" as listeners feel it), and the fraction back is the number of
listeners of the old generation that got a frame of the new one, over the
listeners that had been on the old one.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
from bisect import bisect_left as _bisect
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from . import config, frames, runtime, web as webutil, wsclient
from .fasthist import DELAY_BOUNDS_MS, GAP_BOUNDS_MS, JOIN_BOUNDS_MS, CallbackCollector, FastHistogram
from .history import History

_now = time.time
_peek = frames.peek

TARGET = Gauge("crowd_listeners_target", "Listeners the load asks for (requested minus drained)")
CONNECTED = Gauge("crowd_listeners_connected", "Listeners with an open edge connection")
ATTEMPTED = Counter("crowd_joins_attempted_total", "Join attempts (control, then edge)")
SUCCEEDED = Counter("crowd_joins_succeeded_total", "Joins that opened an edge connection")
FAILED = Counter("crowd_joins_failed_total", "Joins that failed, by reason", ["reason"])
KICKS = Counter("crowd_kicks_total", "Connections closed by the edge with 4001 kicked")
SHEDS = Counter("crowd_sheds_total", "Joins the edge shed with 503 and Retry-After (its admission control)")
RECONNECTS = Counter("crowd_reconnects_total", "Rejoins after a connection ended")
GAVE_UP = Counter("crowd_gave_up_total", "Listeners who gave up after a disruption")
RECOVERED = Counter("crowd_recovered_after_relaunch_total", "Listeners who got a frame of a room's newer generation")
HEARING = Gauge("crowd_listeners_hearing", "Connected listeners whose last frame is younger than CROWD_HEARING_WINDOW")
SILENCES = Counter("crowd_silences_total", "Silence watchdog fired: a connected listener heard nothing for "
                   "CROWD_SILENCE_TIMEOUT and asked control where the room is")
SILENCE_MOVES = Counter("crowd_silence_moves_total", "Silent listeners that control sent elsewhere and who moved")
ROOM_GONE = Counter("crowd_room_gone_total", "Listeners who stopped because their room ended (410) or is gone "
                    "(404 after they had heard it)")
JOIN_ATTEMPT = Histogram(
    "crowd_join_attempt_seconds", "Every join attempt (control, then edge) by result: ok, failed or timeout",
    ["result"], buckets=tuple(b / 1000 for b in JOIN_BOUNDS_MS),
)
for _result in ("ok", "failed", "timeout"):
    JOIN_ATTEMPT.labels(_result)
HISTORY_SLICE = 500  # listeners per write of GET /history
JOIN_FAILURES = ("control_unreachable", "state_unreachable", "relaunching", "not_found", "ended", "no_route",
                 "edge_refused", "edge_timeout", "shed")
for _reason in JOIN_FAILURES:  # probes see zeros, not absent series
    FAILED.labels(_reason)


@dataclass
class RoomTrack:
    generation: int = 0
    last_frame_ms: float = 0.0  # wall ms of the newest frame of `generation` seen by anyone
    members: dict[int, int] = field(default_factory=dict)  # generation -> listeners who got a frame of it
    recovered: dict[int, int] = field(default_factory=dict)  # generation -> listeners who came back to it
    relaunches: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out = []
        for r in self.relaunches:
            before = self.members.get(r["from"], 0)
            back = self.recovered.get(r["to"], 0)
            out.append({**r, "before": before, "back": back, "fraction_back": back / before if before else None})
        return {"generation": self.generation, "members": self.members, "relaunches": out}


class Stats:
    def __init__(self) -> None:
        self.delay = FastHistogram(DELAY_BOUNDS_MS)
        self.gap = FastHistogram(GAP_BOUNDS_MS)
        self.join = FastHistogram(JOIN_BOUNDS_MS)
        self.frames = 0
        self.lost = 0
        self.out_of_order = 0
        self.rooms: dict[str, RoomTrack] = {}
        REGISTRY.register(
            CallbackCollector(
                {
                    "crowd_frame_delay_seconds": ("End-to-end delay, host send to listener receive", self.delay),
                    "crowd_frame_gap_seconds": ("Time between consecutive frames of a listener", self.gap),
                    "crowd_join_latency_seconds": ("Join request to open edge connection", self.join),
                },
                {
                    "crowd_frames_received_total": ("Frames received", lambda: self.frames),
                    "crowd_frames_lost_total": ("Frames missing by sequence number", lambda: self.lost),
                    "crowd_frames_out_of_order_total": ("Frames older than one already received", lambda: self.out_of_order),
                },
            )
        )


class Listener:
    __slots__ = ("crowd", "stats", "room", "index", "track", "gen", "proto", "stopped", "task", "rng", "history",
                 "edge", "joined_gen", "move_to", "checking", "next_check", "silent_round", "retry_after")

    def __init__(self, crowd: "Crowd", room: str, index: int) -> None:
        self.crowd = crowd
        self.stats = crowd.stats
        self.room = room
        self.index = index
        self.track = crowd.stats.rooms.setdefault(room, RoomTrack())
        self.gen = 0  # newest generation heard
        self.proto: wsclient.ListenerProtocol | None = None
        self.stopped = False
        self.task: asyncio.Task[None] | None = None
        self.rng: random.Random | None = None
        self.history = History()
        self.edge = ""  # edge of the current connection, as control named it
        self.joined_gen = 0  # generation control named for it
        self.move_to: dict[str, Any] | None = None  # control's answer to a silence check: join there next
        self.checking = False  # a silence check is asking control
        self.next_check = 0.0  # wall ms before which a silent listener does not ask control again
        self.silent_round = 0  # silence checks in the current silence (0: hearing)
        self.retry_after = 0.0  # the edge's Retry-After on its last shed of this listener

    def random(self) -> random.Random:
        if self.rng is None:
            self.rng = random.Random(f"{self.crowd.settings.seed}/{self.crowd.settings.instance}/{self.index}")
        return self.rng

    # hot path: every frame (~100,000 a second per crowd process) ---------------
    def on_frame(self, data: bytes) -> None:
        now = _now() * 1000.0
        try:
            gen, seq, sent = _peek(data)
        except Exception:  # noqa: BLE001 - not a frame: ignore, don't die
            return
        stats = self.stats
        stats.frames += 1
        delay = stats.delay
        delay.counts[_bisect(delay.bounds, now - sent)] += 1
        delay.total += 1
        delay.sum += now - sent
        h = self.history
        if gen == h.gen:  # the open segment continues (the usual case)
            if seq == h.last_seq + 1:
                h.last_seq = seq
            else:
                self.out_of_sequence(seq)
            gap = now - h.last_t
            hist = stats.gap
            hist.counts[_bisect(hist.bounds, gap)] += 1
            hist.total += 1
            hist.sum += gap
            if gap > h.max_gap:
                h.max_gap = gap
            h.frames += 1
            h.last_t = now
        else:
            self.new_segment(gen, seq, now)
        track = self.track
        if gen == track.generation and now > track.last_frame_ms:
            track.last_frame_ms = now

    def out_of_sequence(self, seq: int) -> None:
        missing = self.history.out_of_sequence(seq)
        if missing > 0:
            self.stats.lost += missing
        else:  # late or duplicate: older than a frame already received
            self.stats.out_of_order += 1

    def new_segment(self, gen: int, seq: int, now: float) -> None:
        """A frame on a new connection or of another generation: close the open segment, open the next."""
        h, stats = self.history, self.stats
        h.close_open()
        if gen == h.last_gen:  # same generation on a new connection: the gap and loss span the reconnect
            stats.gap.observe(now - h.last_t)
            if seq > h.last_seq + 1:
                stats.lost += seq - h.last_seq - 1
            elif seq <= h.last_seq:
                stats.out_of_order += 1
        elif gen > self.gen:
            self.new_generation(gen, now)
        elif gen < self.gen:  # an older generation after a newer one
            stats.out_of_order += 1
        h.open(gen, seq, now)

    def new_generation(self, gen: int, now: float) -> None:
        track = self.track
        if gen > track.generation:
            if track.generation:
                track.relaunches.append({
                    "from": track.generation, "to": gen, "at": now / 1000,
                    "outage_s": round((now - track.last_frame_ms) / 1000, 3),
                })
            track.generation = gen
            track.last_frame_ms = now
        track.members[gen] = track.members.get(gen, 0) + 1
        if self.gen:
            track.recovered[gen] = track.recovered.get(gen, 0) + 1
            RECOVERED.inc()
        self.gen = gen

    # lifecycle ------------------------------------------------------------------
    async def run(self, delay: float) -> None:
        crowd, t = self.crowd, self.crowd.settings.timings
        if delay > 0:
            await asyncio.sleep(delay)
        attempt = 0
        disrupted_at: float | None = None
        while not self.stopped:
            if disrupted_at is not None and time.monotonic() - disrupted_at > crowd.settings.patience:
                self.give_up("patience")
                return
            proto, failure = await self.join()
            if proto is None:
                if failure == "ended" or (failure == "not_found" and self.gen):
                    self.room_gone(failure)
                    return
                if failure == "shed":  # the edge said when: come back then, spread so we don't return as one
                    await asyncio.sleep(self.retry_after * self.random().uniform(1.0, 2.0))
                    continue
                attempt += 1
                await asyncio.sleep(self.backoff(attempt))
                continue
            if self.stopped:  # drained while joining: wait_for can swallow the cancel of a finished connect
                proto.close(1000, "drained")
                return
            attempt, disrupted_at = 0, None
            self.proto = proto
            crowd.connected += 1
            CONNECTED.set(crowd.connected)
            code, reason = await proto.closed
            self.history.closed(code, reason, _now() * 1000.0)
            crowd.connected -= 1
            CONNECTED.set(crowd.connected)
            self.proto = None
            if self.stopped:
                return
            RECONNECTS.inc()
            disrupted_at = time.monotonic()
            if code == 4001:
                KICKS.inc()
            if crowd.settings.give_up and self.random().random() < crowd.settings.give_up:
                self.give_up("disruption")
                return
            if code == 4004 or self.move_to is not None:
                await asyncio.sleep(self.random().uniform(0, t.backoff_base / 4))  # moved: go find it now
            else:
                attempt += 1
                await asyncio.sleep(self.backoff(attempt))

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform(0, min(max, base * 2^attempt))."""
        t = self.crowd.settings.timings
        return self.random().uniform(0, min(t.backoff_max, t.backoff_base * 2 ** min(attempt, 20)))

    def give_up(self, reason: str) -> None:
        GAVE_UP.inc()
        self.crowd.gave_up += 1
        self.history.gave_up(reason, _now() * 1000.0)
        self.stopped = True

    def room_gone(self, failure: str) -> None:
        ROOM_GONE.inc()
        self.crowd.gone += 1
        self.history.gave_up("room ended" if failure == "ended" else "room gone", _now() * 1000.0)
        self.stopped = True

    async def join(self) -> tuple[wsclient.ListenerProtocol | None, str]:
        async with self.crowd.joining:
            return await self._join()

    async def _join(self) -> tuple[wsclient.ListenerProtocol | None, str]:
        """An open connection and "", or None and the failure reason (a JOIN_FAILURES label)."""
        crowd = self.crowd
        ATTEMPTED.inc()
        started = time.monotonic()
        answer, self.move_to = self.move_to, None
        if answer is None:  # (a silence check just asked control: use its answer)
            status, answer = await crowd.control_join(self.room)
            if status != 200:
                return self.join_failed(join_failure_reason(status, answer), started, answer.get("timeout", False))
        try:
            edge = answer["edge"]
            host, port = crowd.settings.route(edge)
        except (config.ConfigError, KeyError, TypeError):
            return self.join_failed("no_route", started)
        self.history.connecting(edge)
        try:
            proto = await wsclient.connect(host, port, f"/listen/{self.room}", self.on_frame, crowd.connect_timeout)
        except TimeoutError:
            return self.join_failed("edge_timeout", started, timed_out=True)
        except wsclient.Refused as refused:
            if refused.status != 503 or refused.retry_after is None:
                return self.join_failed("edge_refused", started)
            SHEDS.inc()
            self.retry_after = refused.retry_after
            return self.join_failed("shed", started)
        except (OSError, ConnectionError):
            return self.join_failed("edge_refused", started)
        SUCCEEDED.inc()
        took = time.monotonic() - started
        crowd.stats.join.observe(took * 1000)
        JOIN_ATTEMPT.labels("ok").observe(took)
        self.edge, self.joined_gen = sys.intern(edge), int(answer.get("generation") or 0)
        self.silent_round, self.next_check = 0, 0.0
        self.history.joined(edge, self.joined_gen, _now() * 1000.0)
        return proto, ""

    def join_failed(self, reason: str, started: float, timed_out: bool = False) -> tuple[None, str]:
        FAILED.labels(reason).inc()
        JOIN_ATTEMPT.labels("timeout" if timed_out else "failed").observe(time.monotonic() - started)
        self.history.join_failed(reason, _now() * 1000.0)
        return None, reason

    # silence watchdog (Crowd.watch_silence finds silent listeners) -----------------
    async def check_silence(self, silent_ms: float) -> None:
        """Ask control where the room is; move if it is elsewhere, else stay and ask again later."""
        crowd, proto = self.crowd, self.proto
        try:
            if not self.silent_round:
                SILENCES.inc()
                crowd.silences += 1
                self.history.silence(silent_ms, _now() * 1000.0)
            self.silent_round += 1
            status, answer = await crowd.control_join(self.room)
            if proto is None or self.proto is not proto or self.stopped:
                return  # the connection ended meanwhile; the listener's loop handles it
            if status == 200 and (answer.get("edge") != self.edge or int(answer.get("generation") or 0) > self.joined_gen):
                SILENCE_MOVES.inc()
                self.move_to = answer
                proto.close(1000, "silence")
            elif status in (404, 410):
                proto.close(1000, "silence")  # the rejoin finds the room gone and says so
            else:
                # Control says it is here (the host may be on its way) or cannot say: stay, ask again later.
                t, limit = crowd.settings.timings, crowd.settings.silence_timeout
                wait = min(limit, t.backoff_base * 2 ** min(self.silent_round, 20))
                self.next_check = _now() * 1000.0 + self.random().uniform(0.5, 1.0) * wait * 1000.0
        finally:
            self.checking = False

    def stop(self) -> None:
        self.stopped = True
        if self.proto is not None:
            self.proto.close(1000, "drained")
        elif self.task is not None:
            self.task.cancel()

    def history_json(self) -> dict[str, Any]:
        return self.history.to_json(f"{self.crowd.settings.instance}/{self.index}", self.room, not self.stopped)


def join_failure_reason(status: int, body: Any) -> str:
    """A small fixed set of label values (Prometheus labels must not be free text)."""
    reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
    if status == 0:
        return "control_unreachable"
    if status == 503 and reason.startswith("state unreachable"):
        return "state_unreachable"
    if status == 503 and "relaunching" in reason:
        return "relaunching"
    return {404: "not_found", 410: "ended"}.get(status, f"http_{status}")


class Crowd:
    def __init__(self, settings: config.Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        chost, cport = settings.route("control")
        self.base = f"http://{chost}:{cport}"
        self.stats = Stats()
        self.listeners: list[Listener] = []
        self.connected = 0
        self.gave_up = 0
        self.gone = 0
        self.silences = 0
        self.target = 0
        self.drain_rng = random.Random(f"{settings.seed}/{settings.instance}/drain")
        self.connect_timeout = settings.connect_timeout
        # One process plays thousands of devices: bound the joins in flight so a
        # surge queues here instead of starving the loop that measures frames.
        self.joining = asyncio.Semaphore(settings.max_joining)
        self.checks: set[asyncio.Task[None]] = set()  # silence checks in flight (held: tasks are weakly referenced)
        HEARING.set_function(self.hearing)

    async def control_join(self, room: str) -> tuple[int, dict[str, Any]]:
        """``(status, body)`` of control's join; ``(0, {reason, timeout})`` when control cannot be reached."""
        try:
            async with self.session.post(f"{self.base}/rooms/{room}/join") as resp:
                body = await resp.json(content_type=None)
                return resp.status, body if isinstance(body, dict) else {"reason": str(body)[:100]}
        except TimeoutError:
            return 0, {"reason": "control unreachable: TimeoutError", "timeout": True}
        except (aiohttp.ClientError, ValueError) as err:
            return 0, {"reason": f"control unreachable: {type(err).__name__}"}

    def hearing(self) -> int:
        """Connected listeners whose last frame is younger than CROWD_HEARING_WINDOW (scraped, not kept)."""
        cutoff = _now() * 1000.0 - self.settings.hearing_window * 1000.0
        return sum(1 for x in self.listeners if x.proto is not None and x.history.last_t >= cutoff)

    async def watch_silence(self, stop: asyncio.Event) -> None:
        """The silence watchdog: every connected listener silent for CROWD_SILENCE_TIMEOUT asks control."""
        timeout = self.settings.silence_timeout
        if math.isinf(timeout):
            return
        period, timeout_ms = min(0.25, timeout / 5), timeout * 1000.0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass
            now = _now() * 1000.0
            for listener in self.listeners:
                if listener.proto is None or listener.checking:
                    continue
                h = listener.history
                heard = h.last_t if h.last_t > h.conn_t else h.conn_t
                if now - heard < timeout_ms:
                    listener.silent_round = 0
                elif now >= listener.next_check:
                    listener.checking = True
                    task = asyncio.create_task(listener.check_silence(now - heard))
                    self.checks.add(task)
                    task.add_done_callback(self.checks.discard)

    def add(self, room: str, count: int, over_s: float) -> None:
        for i in range(count):
            listener = Listener(self, room, len(self.listeners))
            self.listeners.append(listener)
            listener.task = asyncio.create_task(listener.run(over_s * i / count if count else 0))
        self.target += count
        TARGET.set(self.target)

    def drain(self, fraction: float) -> int:
        active = [x for x in self.listeners if not x.stopped]
        chosen = self.drain_rng.sample(active, math.floor(len(active) * fraction))
        for listener in chosen:
            listener.stop()
        self.target = max(0, self.target - len(chosen))
        TARGET.set(self.target)
        return len(chosen)

    # HTTP API -------------------------------------------------------------------
    async def load(self, request: web.Request) -> web.Response:
        return await self._add(request, "ramp_s")

    async def surge(self, request: web.Request) -> web.Response:
        return await self._add(request, "over_s")

    async def _add(self, request: web.Request, spread: str) -> web.Response:
        try:
            body = await request.json()
            room, count, over = body["room"], int(body["listeners"]), float(body.get(spread, 0))
        except (ValueError, KeyError, TypeError):
            return webutil.error(400, f"body must be JSON {{room, listeners, {spread}}}")
        if not isinstance(room, str) or count < 0 or over < 0:
            return webutil.error(400, f"room must be a string, listeners and {spread} >= 0")
        self.add(room, count, over)
        return web.json_response({"room": room, "added": count, "target": self.target}, status=202)

    async def drain_handler(self, request: web.Request) -> web.Response:
        try:
            fraction = float((await request.json())["fraction"])
        except (ValueError, KeyError, TypeError):
            return webutil.error(400, "body must be JSON {fraction}")
        if not 0 <= fraction <= 1:
            return webutil.error(400, "fraction must be between 0 and 1")
        return web.json_response({"drained": self.drain(fraction), "target": self.target})

    def snapshot(self) -> dict[str, Any]:
        s = self.stats

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        failed = {
            labels["reason"]: int(sample.value)
            for metric in FAILED.collect() for sample in metric.samples
            if sample.name.endswith("_total") and (labels := sample.labels) and sample.value
        }
        return {
            "instance": self.settings.instance,
            "target": self.target,
            "connected": self.connected,
            "gave_up": self.gave_up,
            "joins": {"attempted": int(ATTEMPTED._value.get()), "succeeded": int(SUCCEEDED._value.get()),
                      "failed": failed, "latency_p50_ms": ms(s.join.quantile(0.5)),
                      "latency_p99_ms": ms(s.join.quantile(0.99))},
            "kicks": int(KICKS._value.get()),
            "sheds": int(SHEDS._value.get()),
            "reconnects": int(RECONNECTS._value.get()),
            "hearing": self.hearing(),
            "silences": self.silences,
            "room_gone": self.gone,
            "recovered_after_relaunch": int(RECOVERED._value.get()),
            "frames": {"received": s.frames, "lost": s.lost, "out_of_order": s.out_of_order,
                       "within_250ms": s.delay.at_most(250),
                       "delay_p50_ms": ms(s.delay.quantile(0.5)), "delay_p99_ms": ms(s.delay.quantile(0.99)),
                       "gap_p99_ms": ms(s.gap.quantile(0.99))},
            "rooms": {name: track.summary() for name, track in s.rooms.items()},
        }

    async def stats_handler(self, _: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def history_handler(self, request: web.Request) -> web.StreamResponse:
        """Every listener's history (of ``?room=R`` only), written in slices so the frame loop keeps up."""
        room = request.query.get("room")
        chosen = [x for x in self.listeners if room is None or x.room == room]
        # Every listener this process ever ran is kept (each history is bounded), so none is left out:
        # truncated_listeners (listeners missing from the answer) is 0; per listener, "truncated" says
        # whether its oldest entries were merged or dropped.
        head = {"instance": self.settings.instance, "now": round(_now(), 3), "truncated_listeners": 0}
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(json.dumps(head)[:-1].encode() + b', "listeners": [')
        for i in range(0, len(chosen), HISTORY_SLICE):
            part = ", ".join(json.dumps(x.history_json()) for x in chosen[i:i + HISTORY_SLICE])
            await resp.write((", " if i else "").encode() + part.encode())
            await asyncio.sleep(0)
        await resp.write(b"]}")
        await resp.write_eof()
        return resp

    async def health(self) -> tuple[bool, dict]:
        return True, {"target": self.target, "connected": self.connected}


async def main(stop: asyncio.Event) -> None:
    settings = config.load_or_exit("crowd")
    log = runtime.setup_logging(settings)
    limit = runtime.raise_open_files(log)  # one socket per listener
    connector = aiohttp.TCPConnector(limit=256, force_close=False)
    timeout = aiohttp.ClientTimeout(total=max(5.0, 4 * settings.timings.state_timeout))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        crowd = Crowd(settings, session)
        app = webutil.base_app(crowd.health)
        app.router.add_post("/load", crowd.load)
        app.router.add_post("/surge", crowd.surge)
        app.router.add_post("/drain", crowd.drain_handler)
        app.router.add_get("/stats", crowd.stats_handler)
        app.router.add_get("/history", crowd.history_handler)
        async with webutil.serving(app, settings):
            log.info("crowd on %s:%s (seed %d, open files up to %d)", settings.bind, settings.port, settings.seed, limit)
            await crowd.watch_silence(stop)
            await stop.wait()
        for listener in crowd.listeners:
            listener.stop()


if __name__ == "__main__":
    runtime.run(main)
