"""The shared state in Redis: rooms, edge heartbeats, supervisor leases.

One module owns the key layout so control, edge and supervisor agree on it.
Multi-key changes are Lua scripts, so a relaunch or a heartbeat is atomic and
one round trip (the edge->state link may be slow on purpose).

Keys: ``rq:rooms`` (set), ``rq:shard:<n>`` (set of rooms), ``rq:room:<id>``
(hash), ``rq:hb:edges`` / ``rq:hb:supervisors`` (zset name -> last beat, ms),
``rq:edge:<name>`` (hash: listeners, capacity, rooms), ``rq:placed`` (hash:
edge -> rooms assigned and not ended), ``rq:lease:<shard>``
(string: holder, expiring), ``rq:relaunches:<id>`` (list of relaunch records,
the newest RELAUNCH_HISTORY kept).

Beats only move forward (``ZADD GT``): a heartbeat that sat in a stalled
store's socket buffer and runs after a newer one must not make an edge look
older than it is.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .config import Settings
from .shards import shard_of

ROOMS = "rq:rooms"
EDGE_BEATS = "rq:hb:edges"
PLACED = "rq:placed"  # hash edge -> rooms assigned to it (not ended)
SUPERVISOR_BEATS = "rq:hb:supervisors"
POOL_SIZE = 32
RELAUNCH_HISTORY = 64  # relaunch records kept per room


def room_key(room: str) -> str:
    return f"rq:room:{room}"


def shard_key(shard: int) -> str:
    return f"rq:shard:{shard}"


def relaunches_key(room: str) -> str:
    return f"rq:relaunches:{room}"


def lease_key(shard: int) -> str:
    return f"rq:lease:{shard}"


def edge_key(edge: str) -> str:
    return f"rq:edge:{edge}"


def now_ms() -> float:
    return time.time() * 1000.0


def connect(settings: Settings, timeout_s: float | None = None) -> aioredis.Redis:
    """A client for ``state`` through this instance's route; a call fails within ~2 x timeout.

    ``timeout_s`` defaults to STATE_TIMEOUT (control: fail fast). The edge passes
    HEARTBEAT_TIMEOUT: a heartbeat slower than that is a missed one anyway.
    STATE_PASSWORD, when set, is sent with AUTH on every new connection.
    """
    host, port = settings.route("state")
    timeout = settings.timings.state_timeout if timeout_s is None else timeout_s
    # A bounded pool: a join surge queues for a connection (at most ``timeout``)
    # instead of opening thousands of connections to Redis.
    pool = aioredis.BlockingConnectionPool(
        host=host,
        port=port,
        password=settings.state_password or None,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # One immediate retry reconnects a connection that died with a restarted
        # Redis; more would turn "fail fast" into "hang".
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
        max_connections=POOL_SIZE,
        timeout=timeout,
    )
    return aioredis.Redis(connection_pool=pool)


@dataclass(frozen=True)
class Room:
    room: str
    state: str  # live | relaunching | ended
    edge: str
    host: str
    backups: list[str]
    generation: int
    relaunches: int
    last_relaunch: dict[str, Any] | None
    host_seen_ms: float
    relaunch_history: tuple[dict[str, Any], ...] = ()  # oldest first, as written by supervisors
    created_ms: float = 0.0  # wall clock (ms) of the room's creation, as the store recorded it

    @classmethod
    def from_hash(cls, data: dict[str, str], history: list[str] | None = None) -> "Room":
        last = data.get("last_relaunch") or ""
        return cls(
            room=data["room"],
            state=data.get("state", "live"),
            edge=data.get("edge", ""),
            host=data.get("host", ""),
            backups=json.loads(data.get("backups") or "[]"),
            generation=int(data.get("generation", 1)),
            relaunches=int(data.get("relaunches", 0)),
            last_relaunch=json.loads(last) if last else None,
            host_seen_ms=float(data.get("host_seen_ms", 0) or 0),
            relaunch_history=tuple(json.loads(r) for r in history or ()),
            created_ms=float(data.get("created_ms", 0) or 0),
        )

    def public(self) -> dict[str, Any]:
        """The room as control's API shows it (docs/ARCHITECTURE.md)."""
        return {
            "room": self.room,
            "state": self.state,
            "edge": self.edge,
            "host": self.host,
            "backups": self.backups,
            "generation": self.generation,
            "relaunches": self.relaunches,
            "last_relaunch": self.last_relaunch,
            "relaunch_history": [history_entry(r) for r in self.relaunch_history],
            "created_ms": self.created_ms,
        }


def history_entry(record: dict[str, Any]) -> dict[str, Any]:
    """One relaunch as ``relaunch_history`` shows it: the generation and edge it produced, and when."""
    to = record.get("to") or {}
    return {
        "generation": to.get("generation"),
        "edge": to.get("edge"),
        "host": to.get("host"),
        "state": record.get("state", "live"),
        "reason": record.get("reason"),
        "failed_at": record.get("failed_at"),
        "detected_at": record.get("detected_at"),
        "completed_at": record.get("completed_at"),
    }


@dataclass(frozen=True)
class Assignment:
    edge: str
    generation: int
    state: str
    host: str


_CREATE = """
local key = KEYS[1]
local state = redis.call('HGET', key, 'state')
if state and state ~= 'ended' then return 0 end
local gen = tonumber(redis.call('HGET', key, 'generation') or '0') + 1
redis.call('DEL', key)
redis.call('HSET', key, 'room', ARGV[1], 'state', 'live', 'edge', ARGV[2], 'host', ARGV[3],
  'backups', ARGV[4], 'generation', gen, 'relaunches', 0, 'last_relaunch', '',
  'host_seen_ms', ARGV[5], 'created_ms', ARGV[5])
redis.call('DEL', KEYS[5])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
return gen
"""

# KEYS: room, placed, relaunch history. ARGV: expected generation, edge, host, backups json, state,
# last_relaunch json, now, history length kept
_RELAUNCH = """
local key = KEYS[1]
if redis.call('HGET', key, 'generation') ~= ARGV[1] then return 0 end
local gen = tonumber(ARGV[1]) + 1
local old_edge, old_state = unpack(redis.call('HMGET', key, 'edge', 'state'))
if old_state ~= 'ended' then redis.call('HINCRBY', KEYS[2], old_edge, -1) end
if ARGV[5] ~= 'ended' then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
redis.call('HSET', key, 'edge', ARGV[2], 'host', ARGV[3], 'backups', ARGV[4], 'state', ARGV[5],
  'generation', gen, 'last_relaunch', ARGV[6], 'host_seen_ms', ARGV[7])
redis.call('HINCRBY', key, 'relaunches', 1)
redis.call('RPUSH', KEYS[3], ARGV[6])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[8]), -1)
return gen
"""

# ARGV: edge, now, listeners, capacity, n, then n x (room, generation, host connected 0/1).
# Returns {moved, gone}: rooms this edge holds that are assigned elsewhere (or to another generation,
# or ended), and rooms the store does not know at all (lost with the store's data).
_HEARTBEAT = """
local me, now = ARGV[1], ARGV[2]
redis.call('ZADD', KEYS[1], 'GT', now, me)
redis.call('HSET', KEYS[2], 'listeners', ARGV[3], 'capacity', ARGV[4], 'rooms', ARGV[5], 'beat_ms', now)
local moved, gone = {}, {}
local i = 6
for _ = 1, tonumber(ARGV[5]) do
  local room, gen, hosted = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local key = 'rq:room:' .. room
  local cur = redis.call('HMGET', key, 'edge', 'generation', 'state')
  if cur[1] == me and cur[2] == gen and cur[3] == 'live' then
    if hosted == '1' then redis.call('HSET', key, 'host_seen_ms', now) end
  elseif not cur[1] then
    table.insert(gone, room)
  else
    table.insert(moved, room)
  end
end
return {moved, gone}
"""

_MARK = """
if redis.call('HGET', KEYS[1], 'generation') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
return 1
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class State:
    """Typed operations on the shared state; every call is one round trip."""

    def __init__(self, client: aioredis.Redis, shards: int) -> None:
        self.r = client
        self.shards = shards
        self._create = client.register_script(_CREATE)
        self._relaunch = client.register_script(_RELAUNCH)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._mark = client.register_script(_MARK)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def close(self) -> None:
        await self.r.aclose()

    # rooms -----------------------------------------------------------------
    async def create_room(self, room: str, edge: str, host: str, backups: list[str]) -> int:
        """The new room's generation, or 0 if a room of that id is live or relaunching."""
        keys = [room_key(room), ROOMS, shard_key(shard_of(room, self.shards)), PLACED, relaunches_key(room)]
        return int(await self._create(keys=keys, args=[room, edge, host, json.dumps(backups), now_ms()]))

    async def room(self, room: str) -> Room | None:
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.hgetall(room_key(room))
            pipe.lrange(relaunches_key(room), 0, -1)
            data, history = await pipe.execute()
        return Room.from_hash(data, history) if data else None

    async def room_assignment(self, room: str) -> Assignment | None:
        """Where a room lives now: the cheap check behind every join and every edge admission."""
        edge, gen, state, host = await self.r.hmget(room_key(room), "edge", "generation", "state", "host")
        return None if edge is None else Assignment(edge, int(gen), state, host or "")

    async def rooms(self, names: list[str] | None = None) -> list[Room]:
        if names is None:
            names = sorted(await self.r.smembers(ROOMS))
        if not names:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(room_key(name))
            found = await pipe.execute()
        return [Room.from_hash(d) for d in found if d]

    async def rooms_with_history(self, names: list[str] | None = None) -> list[Room]:
        """Like ``rooms``, with each room's relaunch history (what control's API shows)."""
        if names is None:
            names = sorted(await self.r.smembers(ROOMS))
        if not names:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(room_key(name))
                pipe.lrange(relaunches_key(name), 0, -1)
            found = await pipe.execute()
        return [Room.from_hash(d, h) for d, h in zip(found[::2], found[1::2]) if d]

    async def shard_rooms(self, shards: list[int]) -> list[Room]:
        if not shards:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for shard in shards:
                pipe.smembers(shard_key(shard))
            sets = await pipe.execute()
        return await self.rooms(sorted(set().union(*sets)))

    async def relaunch(
        self, room: Room, *, edge: str, host: str, backups: list[str], state: str, record: dict[str, Any],
        host_head_start_s: float = 0.0,
    ) -> int:
        """Move ``room`` to a new generation if nobody else did first; the new generation or 0.

        The new generation's host is counted as seen ``host_head_start_s`` from now: it has to learn
        of the generation (by polling control) before its frames can reach the edge."""
        seen = now_ms() + host_head_start_s * 1000.0
        args = [room.generation, edge, host, json.dumps(backups), state, json.dumps(record), seen, RELAUNCH_HISTORY]
        keys = [room_key(room.room), PLACED, relaunches_key(room.room)]
        return int(await self._relaunch(keys=keys, args=args))

    async def mark(self, room: Room, state: str) -> bool:
        """Set a room's state (e.g. relaunching) if it is still at the generation we saw."""
        return bool(await self._mark(keys=[room_key(room.room)], args=[room.generation, state]))

    # edges -----------------------------------------------------------------
    async def edge_heartbeat(
        self, edge: str, listeners: int, capacity: int, rooms: list[tuple[str, int, bool]]
    ) -> tuple[list[str], list[str]]:
        """Record a beat; ``(moved, gone)``: reported rooms no longer here, and rooms the store does not know."""
        args: list[Any] = [edge, now_ms(), listeners, capacity, len(rooms)]
        for name, generation, hosted in rooms:
            args += [name, generation, 1 if hosted else 0]
        moved, gone = await self._heartbeat(keys=[EDGE_BEATS, edge_key(edge)], args=args)
        return list(moved), list(gone)

    async def edge_beats(self) -> dict[str, float]:
        return {name: float(score) for name, score in await self.r.zrange(EDGE_BEATS, 0, -1, withscores=True)}

    async def edge_loads(self, edges: list[str]) -> dict[str, tuple[int, int, int]]:
        """edge -> (listeners and capacity as of its last heartbeat, rooms placed on it now)."""
        async with self.r.pipeline(transaction=False) as pipe:
            for edge in edges:
                pipe.hmget(edge_key(edge), "listeners", "capacity")
            pipe.hmget(PLACED, edges)
            *rows, placed = await pipe.execute()
        return {e: (int(row[0] or 0), int(row[1] or 0), int(p or 0)) for e, row, p in zip(edges, rows, placed)}

    async def live_edges(self, timeout_s: float) -> list[str]:
        cutoff = now_ms() - timeout_s * 1000.0
        return [e for e, beat in (await self.edge_beats()).items() if beat >= cutoff]

    async def pick_edge(self, timeout_s: float, exclude: str = "") -> str | None:
        """The live edge with the most free capacity (ties: fewest rooms placed, then name)."""
        live = [e for e in await self.live_edges(timeout_s) if e != exclude]
        if not live:
            return None
        loads = await self.edge_loads(live)

        def key(edge: str) -> tuple[float, int, str]:
            listeners, capacity, rooms = loads[edge]
            return (listeners / capacity if capacity else 0.0, rooms, edge)

        return min(live, key=key)

    # supervisors and leases -------------------------------------------------
    async def supervisor_heartbeat(self, name: str) -> None:
        await self.r.zadd(SUPERVISOR_BEATS, {name: now_ms()}, gt=True)

    async def live_supervisors(self, window_s: float) -> list[str]:
        cutoff = now_ms() - window_s * 1000.0
        return [n for n, s in await self.r.zrange(SUPERVISOR_BEATS, 0, -1, withscores=True) if s >= cutoff]

    async def lease_holders(self) -> dict[int, str | None]:
        values = await self.r.mget([lease_key(s) for s in range(self.shards)])
        return dict(enumerate(values))

    async def acquire(self, shard: int, me: str, ttl_s: float) -> bool:
        return bool(await self.r.set(lease_key(shard), me, nx=True, px=int(ttl_s * 1000)))

    async def renew(self, shard: int, me: str, ttl_s: float) -> bool:
        return bool(await self._renew(keys=[lease_key(shard)], args=[me, int(ttl_s * 1000)]))

    async def release(self, shard: int, me: str) -> None:
        await self._release(keys=[lease_key(shard)], args=[me])
