"""control: the HTTP API to create rooms, join them (which edge, which generation) and read status.

Join must fail fast with 503 and a reason when the state store is unreachable
(socket timeouts from STATE_TIMEOUT), and work again as soon as it is back.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from aiohttp import web
from prometheus_client import Counter
from redis.exceptions import RedisError

from . import config, runtime, web as webutil
from .state import Assignment, State, connect

JOINS = Counter("control_joins_total", "Join requests by result", ["result"])
CREATES = Counter("control_rooms_created_total", "Room creations by result", ["result"])
for _result in ("ok", "not_found", "ended", "relaunching", "state_unreachable"):  # zeros, not absent series
    JOINS.labels(_result)

ROOM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def unreachable(err: Exception) -> web.Response:
    return webutil.error(503, f"state unreachable: {type(err).__name__}: {err}".strip(": "))


def validate_create(body: Any) -> tuple[str, str, list[str]]:
    """``(room, host, backups)`` from a create request; ValueError names the bad field."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object {room, host, backups[]}")
    room, host, backups = body.get("room"), body.get("host"), body.get("backups", [])
    if not isinstance(room, str) or not ROOM_ID.match(room):
        raise ValueError("room: expected 1-64 characters of letters, digits, '.', '_' or '-'")
    if not isinstance(host, str) or not ACCOUNT.match(host):
        raise ValueError("host: expected an account name (letters, digits, '.', '_', '-')")
    if not isinstance(backups, list) or not all(isinstance(b, str) and ACCOUNT.match(b) for b in backups):
        raise ValueError("backups: expected a list of account names")
    if host in backups:
        raise ValueError("backups: must not contain the host itself")
    return room, host, backups


class Control:
    def __init__(self, settings: config.Settings, state: State) -> None:
        self.settings = settings
        self.state = state
        self._joins: dict[str, tuple[float, asyncio.Future[Assignment | None]]] = {}

    async def create(self, request: web.Request) -> web.Response:
        try:
            room, host, backups = validate_create(await request.json())
        except ValueError as err:
            CREATES.labels("invalid").inc()
            return webutil.error(400, str(err))
        try:
            edge = await self.state.pick_edge(self.settings.timings.heartbeat_timeout)
            if edge is None:
                CREATES.labels("no_edge").inc()
                return webutil.error(503, "no live edge to host the room")
            self._joins.pop(room, None)
            if not await self.state.create_room(room, edge, host, backups):
                CREATES.labels("exists").inc()
                return webutil.error(409, f"room {room!r} already exists and has not ended")
            created = await self.state.room(room)
        except RedisError as err:
            CREATES.labels("state_unreachable").inc()
            return unreachable(err)
        CREATES.labels("created").inc()
        assert created is not None
        return web.json_response(created.public(), status=201)

    async def status(self, request: web.Request) -> web.Response:
        try:
            room = await self.state.room(request.match_info["room"])
        except RedisError as err:
            return unreachable(err)
        if room is None:
            return webutil.error(404, f"no room {request.match_info['room']!r}")
        return web.json_response(room.public())

    async def list_rooms(self, request: web.Request) -> web.Response:
        host = request.query.get("host")
        try:
            rooms = await self.state.rooms_with_history()
        except RedisError as err:
            return unreachable(err)
        return web.json_response([r.public() for r in rooms if host is None or r.host == host])

    async def assignment(self, name: str) -> Assignment | None:
        """Coalesced: concurrent joins of one room share one lookup; an answer is reused for
        half a heartbeat interval, so a surge costs Redis a few calls a second. Failures and
        unknown rooms are not reused."""
        now = time.monotonic()
        cached = self._joins.get(name)
        stale = cached is None or cached[0] <= now
        if not stale and cached[1].done():
            stale = cached[1].exception() is not None or cached[1].result() is None
        if stale:
            future = asyncio.ensure_future(self.state.room_assignment(name))
            future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, even if unawaited
            cached = self._joins[name] = (now + self.settings.timings.heartbeat_interval / 2, future)
        return await asyncio.shield(cached[1])

    async def join(self, request: web.Request) -> web.Response:
        name = request.match_info["room"]
        try:
            found = await self.assignment(name)
        except RedisError as err:
            JOINS.labels("state_unreachable").inc()
            return unreachable(err)
        if found is None:
            JOINS.labels("not_found").inc()
            return webutil.error(404, f"no room {name!r}")
        if found.state == "ended":
            JOINS.labels("ended").inc()
            return webutil.error(410, f"room {name!r} has ended")
        if found.state != "live":
            JOINS.labels("relaunching").inc()
            return webutil.error(503, f"room {name!r} is relaunching")
        JOINS.labels("ok").inc()
        return web.json_response({"edge": found.edge, "generation": found.generation})

    async def health(self) -> tuple[bool, dict]:
        try:
            await self.state.r.ping()
        except RedisError as err:
            return False, {"state": f"unreachable: {type(err).__name__}"}
        return True, {"state": "ok"}


async def main(stop: asyncio.Event) -> None:
    settings = config.load_or_exit("control")
    log = runtime.setup_logging(settings)
    state = State(connect(settings), settings.shards)
    control = Control(settings, state)
    app = webutil.base_app(control.health)
    app.router.add_post("/rooms", control.create)
    app.router.add_get("/rooms", control.list_rooms)
    app.router.add_get("/rooms/{room}", control.status)
    app.router.add_post("/rooms/{room}/join", control.join)
    async with webutil.serving(app, settings):
        log.info("control on %s:%s", settings.bind, settings.port)
        await stop.wait()
    await state.close()


if __name__ == "__main__":
    runtime.run(main)
