"""edge: WebSocket fan-out from a room's host to its listeners, heartbeats to state.

- ``/host/{room}?generation=G&account=A``: the host pushes binary frames; the
  edge frames each once and writes the bytes to every listener (``fanout.py``;
  no queue per listener: half the CPU of a queue-per-listener design; a
  quarter less than ``websockets.broadcast``, which frames it for each, in a
  bare broadcast, about a tenth less in the stack).
- ``/listen/{room}``: listeners receive frames. Over ``EDGE_CAPACITY``
  listeners the edge sheds the newcomer with close code 4001 ``kicked``; a
  room that is not (or no longer) here closes with 4004 ``moved``.
- ``/health`` and ``/metrics`` on the same port (``process_request``).
- Admission control (EDGE_ADMISSION, ``admission.py``): a join is checked and
  admitted or shed with 503 and Retry-After before its WebSocket upgrade;
  without it, the heartbeat waits its turn behind the joins being checked.

An edge's hold on its rooms is a lease of LEASE_TTL, renewed by every
heartbeat that reaches the state store (counted from when the beat was sent).
While the store does not answer, the edge keeps serving: a stalled or
restarting store stops everyone, so nobody can relaunch its rooms meanwhile
(supervisors do not count time they could not watch; see supervisor.py).
Only when the lease has run out does the edge fence itself: it closes its
rooms with 4004 and admits nobody until a heartbeat succeeds. An edge cut off
alone may see its rooms relaunched after HEARTBEAT_TIMEOUT; its host then
follows control to the new edge, and its listeners, hearing silence, ask
control and move (the crowd's silence watchdog) before the lease runs out.

Every HEARTBEAT_INTERVAL one Lua call records the beat, this edge's load and
which rooms heard their host lately: a frame since HOST_GRACE/3 before the
previous beat (a host still connected but sending nothing, e.g. hung or
paused, counts as gone, so its room moves to a backup; an edge whose own loop
stalled still counts the frames from before the stall); it answers with the rooms that were
relaunched elsewhere (or under a new generation), whose listeners are then
closed with 4004 so they rejoin through control.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import config, runtime
from .admission import Gate, LoopLag
from .fanout import fan_out
from .state import Assignment, State, connect

KICKED, MOVED = 4001, 4004
log = logging.getLogger("audioroom.edge")

LISTENERS = Gauge("edge_listeners", "Listeners connected to this edge")
ROOMS = Gauge("edge_rooms", "Rooms with a host or listeners on this edge")
KICKS = Counter("edge_kicks_total", "Listeners shed with 4001 kicked (over EDGE_CAPACITY)")
MOVES = Counter("edge_moved_total", "Connections closed with 4004 moved (room not or no longer here)")
FRAMES_IN = Counter("edge_frames_in_total", "Frames received from hosts")
FRAMES_OUT = Counter("edge_frames_out_total", "Frame copies written to listeners")
BEAT = Histogram(
    "edge_heartbeat_seconds", "Round trip of one heartbeat to state",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BEAT_FAILURES = Counter("edge_heartbeat_failures_total", "Heartbeats that failed")
BEAT_GAP = Gauge("edge_heartbeat_gap_max_seconds", "Longest time between the starts of two heartbeats")
MISSED = Counter("edge_heartbeats_missed_total",
                 "Heartbeats that started more than HEARTBEAT_TIMEOUT after the previous one (a starved loop): "
                 "supervisors may have taken the edge for dead")
FENCED = Counter("edge_fenced_total", "Times this edge dropped its rooms after its lease (LEASE_TTL without a heartbeat) ran out")
GONE = Counter("edge_rooms_gone_total", "Rooms closed because the state store no longer knows them (its data was lost)")


@dataclass
class LiveRoom:
    name: str
    generation: int
    listeners: set[ServerConnection] = field(default_factory=set)
    host: ServerConnection | None = None
    heard: float = 0.0  # monotonic time of the host's last frame (or of its connection)


class Edge:
    def __init__(self, settings: config.Settings, state: State) -> None:
        self.settings = settings
        self.state = state
        self.lag = LoopLag()
        self.gate = Gate(settings.admission, self.lag)
        self.me = settings.instance
        self.rooms: dict[str, LiveRoom] = {}
        self.listeners = 0
        self.last_beat = 0.0  # monotonic time at which the last successful heartbeat was sent
        self.last_try = 0.0  # monotonic time at which the last heartbeat was tried
        # PLANTED_BUG=edge-no-fence: a new generation leaves the old generation's host connected (not fenced).
        self.fences_old_hosts = "edge-no-fence" not in settings.planted_bugs
        self.gap_max = 0.0
        self._cache: dict[str, tuple[float, asyncio.Future[Assignment | None]]] = {}

    # admission -------------------------------------------------------------
    async def assignment(self, room: str, fresh: bool = False) -> Assignment | None:
        """Cached for one heartbeat interval, shared by concurrent joins (a surge is one lookup);
        ``fresh`` skips the cache."""
        now = time.monotonic()
        cached = self._cache.get(room)
        if cached and cached[0] > now and not fresh:
            return await asyncio.shield(cached[1])
        future: asyncio.Future[Assignment | None] = asyncio.ensure_future(self.state.room_assignment(room))
        self._cache[room] = (now + self.settings.timings.heartbeat_interval, future)
        try:
            return await asyncio.shield(future)
        except BaseException:
            self._cache.pop(room, None)
            raise

    def live_room(self, name: str, generation: int) -> LiveRoom:
        """The in-memory room at ``generation``; an older generation's connections are moved out."""
        room = self.rooms.get(name)
        if room is not None and room.generation < generation:
            self.evict(name, fence_host=self.fences_old_hosts)
            room = None
        if room is None:
            room = self.rooms[name] = LiveRoom(name, generation)
            ROOMS.set(len(self.rooms))
        return room

    def evict(self, name: str, fence_host: bool = True) -> None:
        """Close everything of room ``name`` here with 4004 moved (it lives elsewhere now)."""
        room = self.rooms.pop(name, None)
        self._cache.pop(name, None)
        ROOMS.set(len(self.rooms))
        if room is None:
            return
        for conn in list(room.listeners) + ([room.host] if room.host and fence_host else []):
            MOVES.inc()
            asyncio.ensure_future(conn.close(MOVED, "moved"))

    # handlers --------------------------------------------------------------
    async def handler(self, conn: ServerConnection) -> None:
        parts = urlsplit(conn.request.path)
        kind, _, name = parts.path.strip("/").partition("/")
        try:
            found = await self.assignment(name)
        except RedisError:
            await conn.close(1013, "state unreachable")  # 1013: try again later
            return
        # The store's answer (at most one heartbeat interval old) decides, not our lease timer: an edge
        # starved of CPU for a moment finds its beats lapsed, but a room the store says is here is here.
        here = found is not None and found.edge == self.me and found.state == "live"
        if kind == "listen":
            if not here:
                MOVES.inc()
                await conn.close(MOVED, "moved")
                return
            await self.listen(conn, self.live_room(name, found.generation))
        else:
            query = parse_qs(parts.query)
            generation = int(query.get("generation", ["0"])[0] or 0)
            account = query.get("account", [""])[0]
            if found is not None and found.generation < generation:
                # A host of a newer generation than our cached answer: the room was just
                # relaunched (maybe back onto this edge); ask state rather than refuse it.
                try:
                    found = await self.assignment(name, fresh=True)
                except RedisError:
                    await conn.close(1013, "state unreachable")
                    return
                here = found is not None and found.edge == self.me and found.state == "live"
            if not here or found.generation != generation or found.host != account:
                MOVES.inc()
                await conn.close(MOVED, "moved")
                return
            await self.host(conn, self.live_room(name, generation))

    async def listen(self, conn: ServerConnection, room: LiveRoom) -> None:
        if self.listeners >= self.settings.edge_capacity:
            KICKS.inc()
            await conn.close(KICKED, "kicked")
            return
        room.listeners.add(conn)
        self.listeners += 1
        LISTENERS.set(self.listeners)
        try:
            await conn.wait_closed()
        finally:
            room.listeners.discard(conn)
            # PLANTED_BUG=edge-slot-leak: a listener whose connection ended without a closing
            # handshake (a reset, a cut link: 1006) keeps its slot, so the edge fills up and refuses.
            if not ("edge-slot-leak" in self.settings.planted_bugs and conn.close_code == 1006):
                self.listeners -= 1
            LISTENERS.set(self.listeners)

    async def host(self, conn: ServerConnection, room: LiveRoom) -> None:
        if room.host is not None:
            asyncio.ensure_future(room.host.close(1000, "replaced by a newer host connection"))
        room.host = conn
        room.heard = time.monotonic()
        where = f"host of room {room.name} (generation {room.generation})"
        try:
            async for message in conn:
                current = self.rooms.get(room.name)
                if current is not room and current is not None and not self.fences_old_hosts:
                    # PLANTED_BUG=edge-no-fence: an unfenced old host's frames go to the room as it is now,
                    # whose listeners already heard the newer generation (split brain).
                    FRAMES_IN.inc()
                    FRAMES_OUT.inc(fan_out(current.listeners, message))
                    continue
                if current is not room:
                    # Evicted, and a frame was read before the 4004 that evict() scheduled went out
                    # (a busy loop after a stall): say 4004 here, or the handler's return would say 1000.
                    await conn.close(MOVED, "moved")
                    log.info("%s closed: %d moved", where, MOVED)
                    break
                if room.host is not conn:
                    break  # replaced by a newer host connection, which closed this one
                FRAMES_IN.inc()
                room.heard = time.monotonic()
                FRAMES_OUT.inc(fan_out(room.listeners, message))
        except ConnectionClosed as closed:
            # Moved out (we closed it 4004) or lost: expected ends of a host connection,
            # one line each instead of the server's "connection handler failed" traceback.
            if closed.sent is not None and closed.sent.code == MOVED:
                log.info("%s closed: %d moved", where, MOVED)
            else:
                log.warning("%s lost: %s", where, closed)
        finally:
            if room.host is conn:
                room.host = None

    # heartbeat -------------------------------------------------------------
    def fenced(self) -> bool:
        """True when our lease has run out (no heartbeat reached the store for LEASE_TTL): our rooms
        may have been relaunched elsewhere, so we must not serve them."""
        return time.monotonic() - self.last_beat > self.settings.timings.lease_ttl

    def hosted(self, room: LiveRoom, now: float) -> bool:
        """Whether ``room``'s host was heard lately: a frame since HOST_GRACE/3 before the previous beat
        (so frames from before a stall of this edge's own loop count for the first beat after it)."""
        since = min(now, self.last_try) - self.settings.timings.host_grace / 3
        return room.host is not None and room.heard >= since

    async def heartbeat(self) -> None:
        await self.gate.heartbeat_turn()
        started = time.monotonic()
        hosted = [(r.name, r.generation, self.hosted(r, started)) for r in self.rooms.values()]
        if self.last_try:
            gap = started - self.last_try
            if gap > self.gap_max:
                self.gap_max = gap
                BEAT_GAP.set(gap)
            if gap > self.settings.timings.heartbeat_timeout:
                MISSED.inc()
        self.last_try = started
        sent = {name: generation for name, generation, _ in hosted}
        try:
            moved, gone = await self.state.edge_heartbeat(self.me, self.listeners, self.settings.edge_capacity, hosted)
        except Exception:
            BEAT_FAILURES.inc()
            if self.fenced() and self.rooms:
                # Our lease ran out: our rooms may live elsewhere by now. Stop serving them so that
                # listeners and host go back to control instead of hearing a stale copy.
                FENCED.inc()
                log.warning("lease ran out (no heartbeat reached the state store for %.1fs): fencing, closing %d rooms",
                            time.monotonic() - self.last_beat, len(self.rooms))
                for name in list(self.rooms):
                    self.evict(name)
            raise
        BEAT.observe(time.monotonic() - started)
        self.last_beat = started
        for name in gone:
            if name in self.rooms and self.rooms[name].generation == sent.get(name):
                GONE.inc()
                log.warning("room %s is unknown to the state store (its data was lost): closing it (4004 moved)", name)
                self.evict(name)
        for name in moved:
            room = self.rooms.get(name)
            if room is not None and room.generation != sent.get(name):
                # The answer is about the generation we reported; a newer one admitted while
                # the beat was in flight (the room relaunched back here) stays: the next beat checks it.
                continue
            log.warning("room %s is no longer here at this generation: closing it (4004 moved)", name)
            # PLANTED_BUG=edge-no-fence: here too (the beat may learn of the new generation before its
            # host connects), or whether the old host is fenced would be a race, not the bug.
            self.evict(name, fence_host=self.fences_old_hosts)
        for name in [n for n, r in self.rooms.items() if not r.listeners and r.host is None]:
            self.rooms.pop(name, None)
        ROOMS.set(len(self.rooms))

    # HTTP on the WebSocket port ---------------------------------------------
    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path == "/metrics":
            return Response(200, "OK", Headers([("Content-Type", CONTENT_TYPE_LATEST)]), generate_latest(REGISTRY))
        if path == "/health":
            age = time.monotonic() - self.last_beat
            ok = not self.fenced()  # within its lease: serving (a state store outage shorter than that is ridden out)
            body = f'{{"ok": {str(ok).lower()}, "heartbeat_age_s": {age:.3f}, "listeners": {self.listeners}}}'
            status = http.HTTPStatus.OK if ok else http.HTTPStatus.SERVICE_UNAVAILABLE
            return Response(status.value, status.phrase, Headers([("Content-Type", "application/json")]), body.encode())
        kind, _, name = path.strip("/").partition("/")
        if kind not in ("listen", "host") or not name or "/" in name:
            return conn.respond(http.HTTPStatus.NOT_FOUND, "use /listen/{room}, /host/{room}, /health or /metrics\n")
        if kind == "listen":
            shed = await self.gate.admit()
            if shed:
                return self.gate.refusal(conn, shed)
        return None


async def main(stop: asyncio.Event) -> None:
    settings = config.load_or_exit("edge")
    log = runtime.setup_logging(settings)
    limit = runtime.raise_open_files(log)  # one socket per listener
    state = State(connect(settings, settings.timings.heartbeat_timeout), settings.shards)
    edge = Edge(settings, state)
    async with serve(
        edge.handler,
        settings.bind,
        settings.port,
        process_request=edge.process_request,
        compression=None,  # audio frames don't compress; deflate costs CPU and ~50 KiB per connection
        max_size=64 * 1024,
        backlog=settings.admission.backlog,
    ):
        admission = settings.admission
        log.info("edge on %s:%s, capacity %d, open files up to %d, admission %s, join check %.1f ms CPU + %.1f ms wait",
                 settings.bind, settings.port, settings.edge_capacity, limit,
                 "on" if admission.enabled else "off", admission.join_work * 1000, admission.join_wait * 1000)
        watch_lag = asyncio.ensure_future(edge.lag.watch(stop))
        runtime.notify_ready()
        await runtime.every(settings.timings.heartbeat_interval, edge.heartbeat, log, stop,
                            runtime.Outage(log, "state store"))
        watch_lag.cancel()
    edge.gate.close()
    await state.close()


if __name__ == "__main__":
    runtime.run(main)
