"""supervisor: the automation ("staff") that relaunches rooms.

Rooms are split among supervisors by shard leases in Redis: each supervisor
holds about SHARDS / live-supervisors leases, renews them every LEASE_TTL/3,
and takes free (expired) ones. A supervisor only looks after rooms in its
shards, so when supervisors die, their rooms wait until the leases expire and
a survivor takes them: fewer staff, slower recovery.

Every SUPERVISOR_TICK, for each room in its shards:
- edge lost: the room's edge has not heartbeated for HEARTBEAT_TIMEOUT ->
  relaunch on the live edge with most free capacity (new generation);
- host lost: the edge is fine but no host frames for HOST_GRACE -> relaunch
  under the first backup account (new generation); no backup left -> ended.

Only time the supervisor could watch counts against an edge or a host. Beats
are written to the state store: while the store stalls or restarts, nobody's
beats land, and right after it answers again every beat looks old. So an edge
is judged lost only once this supervisor has seen the store answer without a
break (no failed call, no gap over HEARTBEAT_TIMEOUT/2 between answers) for
HEARTBEAT_TIMEOUT, and a host only after HOST_GRACE of the same: a store
outage, or this supervisor's own loss of the store, relaunches nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError

from . import config, runtime, web as webutil
from .shards import fair_share
from .state import Room, State, connect, now_ms

log = logging.getLogger("audioroom.supervisor")
_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)
RELAUNCHES = Counter("supervisor_relaunches_total", "Rooms relaunched, by reason", ["reason"])
DETECT = Histogram(
    "supervisor_relaunch_detect_seconds", "From the failure (last beat seen) to its detection", ["reason"],
    buckets=_BUCKETS,
)
COMPLETE = Histogram(
    "supervisor_relaunch_complete_seconds", "From the failure (last beat seen) to the relaunch written", ["reason"],
    buckets=_BUCKETS,
)
LEASES = Gauge("supervisor_leases_held", "Shard leases this supervisor holds")
ENDED = Counter("supervisor_rooms_ended_total", "Rooms ended: host gone and no backup account left")
STALLED = Counter("supervisor_no_edge_total", "Relaunches postponed because no live edge was left")
for _reason in ("edge_lost", "host_lost"):  # so probes see zeros, not absent series
    RELAUNCHES.labels(_reason)
    DETECT.labels(_reason)
    COMPLETE.labels(_reason)


class StoreWatch:
    """Since when this process has seen the state store answer without a break.

    A break is a failed call, or two answers further apart than ``max_break``
    (a stall between two calls, or this process not running: either way it
    could not see beats land). Monotonic seconds.
    """

    def __init__(self, max_break: float) -> None:
        self.max_break = max_break
        self.since: float | None = None
        self.last = 0.0

    def answered(self, now: float) -> None:
        if self.since is None or now - self.last > self.max_break:
            self.since = now
        self.last = now

    def failed(self) -> None:
        self.since = None

    def watched_for(self, now: float) -> float:
        """Seconds of unbroken view of the store up to ``now`` (0 if the last call failed)."""
        return 0.0 if self.since is None else now - self.since


class Supervisor:
    def __init__(self, settings: config.Settings, state: State) -> None:
        self.settings = settings
        self.t = settings.timings
        self.state = state
        self.me = settings.instance
        self.held: set[int] = set()
        self.last_ok = 0.0
        self.store = StoreWatch(settings.timings.heartbeat_timeout / 2)

    # leases ------------------------------------------------------------------
    async def leases(self) -> None:
        """Renew what we hold, then grow or shrink to the fair share of live supervisors."""
        try:
            await self._leases()
        except RedisError:
            self.store.failed()
            raise
        self.store.answered(time.monotonic())

    async def _leases(self) -> None:
        await self.state.supervisor_heartbeat(self.me)
        for shard in sorted(self.held):
            if not await self.state.renew(shard, self.me, self.t.lease_ttl):
                self.held.discard(shard)
        live = await self.state.live_supervisors(self.t.lease_ttl)
        share = fair_share(self.settings.shards, len(live) or 1)
        for shard in sorted(self.held, reverse=True)[: max(0, len(self.held) - share)]:
            await self.state.release(shard, self.me)
            self.held.discard(shard)
        if len(self.held) < share:
            holders = await self.state.lease_holders()
            for shard, holder in holders.items():
                if len(self.held) >= share:
                    break
                if holder is None and await self.state.acquire(shard, self.me, self.t.lease_ttl):
                    self.held.add(shard)
        LEASES.set(len(self.held))
        self.last_ok = time.monotonic()

    # relaunches --------------------------------------------------------------
    async def check(self) -> None:
        if not self.held:
            return
        try:
            await self._check()
        except RedisError:
            self.store.failed()
            raise

    async def _check(self) -> None:
        rooms = await self.state.shard_rooms(sorted(self.held))
        beats = await self.state.edge_beats()
        self.store.answered(time.monotonic())
        watched = self.store.watched_for(time.monotonic())
        now = now_ms()
        for room in rooms:
            if room.state == "ended":
                continue
            edge_beat = beats.get(room.edge, 0.0)
            edge_alive = now - edge_beat <= self.t.heartbeat_timeout * 1000
            host_gone = now - room.host_seen_ms > self.t.host_grace * 1000
            if room.state == "relaunching":
                await self.edge_lost(room, edge_beat, edge_alive)
            elif not edge_alive:
                if watched < self.t.heartbeat_timeout:
                    continue  # its beats may not have landed yet since the store came back
                await self.edge_lost(room, edge_beat, edge_alive)
            elif host_gone:
                if watched < self.t.host_grace:
                    continue  # the edge's reports of its host may not have landed yet
                await self.host_lost(room)
        self.last_ok = time.monotonic()

    async def edge_lost(self, room: Room, failed_ms: float, edge_alive: bool = False) -> None:
        """Relaunch on another live edge; a room left relaunching may go back to its edge once it is alive."""
        detected = now_ms()
        target = await self.state.pick_edge(self.t.heartbeat_timeout, exclude="" if edge_alive else room.edge)
        if target is None:
            STALLED.inc()
            if room.state == "live" and await self.state.mark(room, "relaunching"):
                log.warning("%s: edge %s lost and no live edge left: relaunching", room.room, room.edge)
            return
        if room.state == "relaunching" and room.last_relaunch and room.last_relaunch.get("failed_at"):
            failed_ms = room.last_relaunch["failed_at"] * 1000  # keep the original failure time
        await self.relaunch(room, "edge_lost", failed_ms, detected, edge=target, host=room.host, backups=room.backups)

    async def host_lost(self, room: Room) -> None:
        detected = now_ms()
        if not room.backups:
            if await self.state.relaunch(
                room, edge=room.edge, host=room.host, backups=[], state="ended",
                record=self.record("host_lost", room.host_seen_ms, detected, room, room.edge, "", "ended"),
            ):
                log.warning("ended %s: host %s gone for HOST_GRACE and no backup account left", room.room, room.host)
                ENDED.inc()
            return
        await self.relaunch(
            room, "host_lost", room.host_seen_ms, detected, edge=room.edge, host=room.backups[0], backups=room.backups[1:]
        )

    async def relaunch(
        self, room: Room, reason: str, failed_ms: float, detected_ms: float, *, edge: str, host: str, backups: list[str]
    ) -> None:
        record = self.record(reason, failed_ms, detected_ms, room, edge, host)
        # The host learns of the new generation by polling control (HOST_POLL_INTERVAL), then needs
        # HOST_GRACE as ever to get its frames to the edge: without the head start a backup host
        # polling every HOST_POLL_INTERVAL could miss a grace not much longer than that.
        if await self.state.relaunch(room, edge=edge, host=host, backups=backups, state="live", record=record,
                                     host_head_start_s=self.t.host_poll):
            log.warning("relaunched %s (%s): %s/%s gen %d -> %s/%s gen %d, %.2fs after the failure", room.room, reason,
                        room.edge, room.host, room.generation, edge, host, room.generation + 1,
                        record["completed_at"] - failed_ms / 1000)
            RELAUNCHES.labels(reason).inc()
            DETECT.labels(reason).observe(max(0.0, (detected_ms - failed_ms) / 1000))
            COMPLETE.labels(reason).observe(max(0.0, record["completed_at"] - failed_ms / 1000))

    def record(
        self, reason: str, failed_ms: float, detected_ms: float, room: Room, edge: str, host: str, state: str = "live"
    ) -> dict[str, Any]:
        """What GET /rooms/{room} shows as last_relaunch; times are wall-clock seconds."""
        return {
            "reason": reason,
            "state": state,
            "failed_at": failed_ms / 1000 if failed_ms else None,
            "detected_at": detected_ms / 1000,
            "completed_at": now_ms() / 1000,
            "by": self.me,
            "from": {"edge": room.edge, "host": room.host, "generation": room.generation},
            "to": {"edge": edge, "host": host, "generation": room.generation + 1},
        }

    async def health(self) -> tuple[bool, dict]:
        age = time.monotonic() - self.last_ok
        ok = self.last_ok > 0 and age <= max(self.t.lease_ttl, 3 * self.t.supervisor_tick)
        return ok, {"leases": sorted(self.held), "last_ok_age_s": round(age, 3)}


async def main(stop: asyncio.Event) -> None:
    settings = config.load_or_exit("supervisor")
    log = runtime.setup_logging(settings)
    state = State(connect(settings), settings.shards)
    sup = Supervisor(settings, state)
    app = webutil.base_app(sup.health)
    async with webutil.serving(app, settings):
        log.info("supervisor on %s:%s, %d shards", settings.bind, settings.port, settings.shards)
        outage = runtime.Outage(log, "state store")  # one line per outage for both loops
        await asyncio.gather(
            runtime.every(settings.timings.lease_ttl / 3, sup.leases, log, stop, outage),
            runtime.every(settings.timings.supervisor_tick, sup.check, log, stop, outage),
        )
        for shard in sorted(sup.held):  # a clean stop hands leases over at once
            try:
                await state.release(shard, sup.me)
            except Exception:  # noqa: BLE001 - best effort; the lease expires anyway
                break
    await state.close()


if __name__ == "__main__":
    runtime.run(main)
