"""Service configuration from the environment (the stack's service contract).

Every variable is read here, once, so a service's whole configuration is one
typed object and a bad value is one clear line naming the variable.

Durations accept seconds (``0.5``) or a unit suffix (``500ms``, ``2s``,
``1m``). See README.md in this package for every variable and both profiles.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Mapping

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0}


class ConfigError(ValueError):
    """A bad environment variable; the message is one line naming it."""


def parse_duration(name: str, raw: str) -> float:
    """Seconds from ``raw`` ('0.5', '500ms', '2s', '1m'); ConfigError names ``name``."""
    match = _DURATION.match(raw)
    if not match:
        raise ConfigError(f"{name}={raw!r}: expected a duration like 0.5, 500ms, 2s or 1m")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Timings:
    """The timing profile: compressed in CI, realistic on game days."""

    heartbeat_interval: float = 1.0  # edge -> state heartbeat period
    heartbeat_timeout: float = 5.0  # an edge silent this long is dead
    lease_ttl: float = 15.0  # supervisor shard lease; renewed every ttl/3
    host_grace: float = 10.0  # a room without its host this long moves to a backup
    supervisor_tick: float = 1.0  # how often a supervisor checks its rooms
    host_poll: float = 2.0  # how often a host looks for rooms under its account
    state_timeout: float = 1.0  # Redis socket timeout: fail fast, don't hang
    backoff_base: float = 0.5  # crowd reconnect backoff (full jitter)
    backoff_max: float = 30.0


@dataclass(frozen=True)
class Admission:
    """An edge's admission control (EDGE_ADMISSION and friends; docker/audioroom/README.md, "Admission")."""

    enabled: bool = False
    join_work: float = 0.0  # CPU seconds one join costs before admission (verifying a join ticket)
    join_wait: float = 0.0  # seconds one join's check blocks, waiting (a synchronous ticket-service call)
    max_handshakes: int = 8  # joins worked on at once (off the event loop) when enabled
    max_pending: int = 256  # joins waiting for one of those; beyond: shed
    shed_lag: float = 0.1  # event-loop lag above which new joins are shed
    retry_after: int = 1  # seconds the shed join is asked to wait (HTTP Retry-After)
    backlog: int = 8192  # the listening socket's backlog: connections the kernel holds before accept
    check_niceness: int = 0  # niceness added to the join-check threads (0: as the event loop; see admission.py)


@dataclass(frozen=True)
class Settings:
    service: str
    instance: str
    bind: str
    port: int
    routes: dict[str, str]
    timings: Timings
    shards: int = 16
    edge_capacity: int = 10_000
    frame_rate: float = 10.0
    frame_bytes: int = 160
    host_account: str = ""
    seed: int = 0
    give_up: float = 0.0
    patience: float = math.inf
    connect_timeout: float = 10.0
    max_joining: int = 256
    silence_timeout: float = 5.0  # a listener hearing nothing this long asks control where the room is
    hearing_window: float = 1.0  # a listener whose last frame is younger than this is "hearing"
    admission: Admission = field(default_factory=Admission)
    state_password: str = field(default="", repr=False)  # AUTH to the state store ("" = none); never printed
    # Bugs planted on purpose (PLANTED_BUG, comma-separated; none by default): the targets that
    # `roomquake explore` must find. Never set them outside such an experiment.
    planted_bugs: frozenset[str] = frozenset()
    extra: dict[str, str] = field(default_factory=dict)

    def route(self, target: str) -> tuple[str, int]:
        """The ``host, port`` this instance dials to reach ``target`` (an instance or a service alias)."""
        try:
            address = self.routes[target]
        except KeyError:
            known = ", ".join(sorted(self.routes)) or "none"
            raise ConfigError(f"RQ_ROUTES has no route to {target!r} (known: {known})") from None
        return split_address("RQ_ROUTES", address)

    def instances_of(self, service: str) -> list[str]:
        """Instance names of ``service`` present in the routes, e.g. edge-1, edge-2."""
        pattern = re.compile(rf"^{re.escape(service)}-\d+$")
        return sorted((n for n in self.routes if pattern.match(n)), key=_instance_key)


def _instance_key(name: str) -> tuple[str, int]:
    base, _, n = name.rpartition("-")
    return base, int(n)


def split_address(name: str, address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"{name}: {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _get(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, default)
    if value is None or value == "":
        raise ConfigError(f"{name} is required and not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if value < low:
        raise ConfigError(f"{name}={raw!r}: must be >= {low}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float = 0.0, high: float = math.inf) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: must be between {low} and {high}")
    return value


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = parse_duration(name, raw)
    if value <= 0:
        raise ConfigError(f"{name}={raw!r}: must be positive")
    return value


def _duration_or_off(env: Mapping[str, str], name: str, default: float, off: float = math.inf) -> float:
    """A duration where ``0`` means off: ``off`` (infinity for a timeout: never; 0 for a cost: none);
    unset means ``default``."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.strip() == "0":
        return off
    return _duration(env, name, default)


def load_timings(env: Mapping[str, str]) -> Timings:
    interval = _duration(env, "HEARTBEAT_INTERVAL", Timings.heartbeat_interval)
    timeout = _duration(env, "HEARTBEAT_TIMEOUT", Timings.heartbeat_timeout)
    if timeout <= interval:
        raise ConfigError(
            f"HEARTBEAT_TIMEOUT={timeout}s must exceed HEARTBEAT_INTERVAL={interval}s "
            "(otherwise every edge looks dead between two heartbeats)"
        )
    return Timings(
        heartbeat_interval=interval,
        heartbeat_timeout=timeout,
        lease_ttl=_duration(env, "LEASE_TTL", Timings.lease_ttl),
        host_grace=_duration(env, "HOST_GRACE", Timings.host_grace),
        supervisor_tick=_duration(env, "SUPERVISOR_TICK", interval),
        host_poll=_duration(env, "HOST_POLL_INTERVAL", Timings.host_poll),
        state_timeout=_duration(env, "STATE_TIMEOUT", Timings.state_timeout),
        backoff_base=_duration(env, "CROWD_BACKOFF_BASE", Timings.backoff_base),
        backoff_max=_duration(env, "CROWD_BACKOFF_MAX", Timings.backoff_max),
    )


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default ``os.environ``); raises ConfigError on a bad value."""
    env = os.environ if env is None else env
    raw_routes = env.get("RQ_ROUTES", "{}") or "{}"
    try:
        routes = json.loads(raw_routes)
    except json.JSONDecodeError as err:
        raise ConfigError(f"RQ_ROUTES is not JSON: {err.msg} at position {err.pos}") from None
    if not isinstance(routes, dict) or not all(isinstance(v, str) for v in routes.values()):
        raise ConfigError('RQ_ROUTES must be a JSON object of name -> "host:port"')
    for name, address in routes.items():
        split_address(f"RQ_ROUTES[{name!r}]", address)
    patience = _duration_or_off(env, "CROWD_PATIENCE", math.inf)
    service = _get(env, "RQ_SERVICE")
    return Settings(
        service=service,
        instance=env.get("RQ_INSTANCE") or f"{service}-1",
        bind=env.get("RQ_BIND") or "127.0.0.1",
        port=_int(env, "RQ_PORT", 0, low=0),
        routes=routes,
        timings=load_timings(env),
        shards=_int(env, "SHARDS", 16, low=1),
        edge_capacity=_int(env, "EDGE_CAPACITY", 10_000, low=1),
        frame_rate=_float(env, "FRAME_RATE", 10.0, low=0.1, high=1000.0),
        frame_bytes=_int(env, "FRAME_BYTES", 160, low=32),
        host_account=env.get("HOST_ACCOUNT", ""),
        seed=_int(env, "CROWD_SEED", 0),
        give_up=_float(env, "CROWD_GIVE_UP", 0.0, high=1.0),
        patience=patience,
        connect_timeout=_duration(env, "CROWD_CONNECT_TIMEOUT", 10.0),
        max_joining=_int(env, "CROWD_MAX_JOINING", 256, low=1),
        silence_timeout=_duration_or_off(env, "CROWD_SILENCE_TIMEOUT", Settings.silence_timeout),
        hearing_window=_duration(env, "CROWD_HEARING_WINDOW", Settings.hearing_window),
        state_password=env.get("STATE_PASSWORD", ""),
        planted_bugs=_planted_bugs(env),
        admission=load_admission(env),
    )


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "true", "1", "yes"):
        return True
    if raw in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{name}={env[name]!r}: expected on or off")


def load_admission(env: Mapping[str, str]) -> Admission:
    enabled = _switch(env, "EDGE_ADMISSION", False)
    max_pending = _int(env, "EDGE_MAX_PENDING", Admission.max_pending, low=1)
    retry_after = _duration(env, "EDGE_RETRY_AFTER", float(Admission.retry_after))
    return Admission(
        enabled=enabled,
        join_work=_duration_or_off(env, "EDGE_JOIN_WORK", 0.0, off=0.0),
        join_wait=_duration_or_off(env, "EDGE_JOIN_WAIT", 0.0, off=0.0),
        max_handshakes=_int(env, "EDGE_MAX_HANDSHAKES", Admission.max_handshakes, low=1),
        max_pending=max_pending,
        shed_lag=_duration(env, "EDGE_SHED_LAG", Admission.shed_lag),
        retry_after=max(1, math.ceil(retry_after)),  # Retry-After carries whole seconds (RFC 9110)
        # with admission on the edge accepts at once and sheds cheaply, so the kernel needs to hold only a
        # loop turn's arrivals (a backlog as small as EDGE_MAX_PENDING drops SYNs: clients time out instead)
        backlog=_int(env, "EDGE_BACKLOG", 1024 if enabled else Admission.backlog, low=1),
        # at least 0: a thread may always be made nicer, not less nice (that needs CAP_SYS_NICE)
        check_niceness=_int(env, "EDGE_CHECK_NICENESS", Admission.check_niceness, low=0),
    )


# PLANTED_BUG names (docker/audioroom/README.md, "Planted bugs").
PLANTED_BUGS = frozenset({"edge-slot-leak", "edge-no-fence", "host-stale-account"})


def _planted_bugs(env: Mapping[str, str]) -> frozenset[str]:
    names = frozenset(n.strip() for n in env.get("PLANTED_BUG", "").split(",") if n.strip())
    unknown = sorted(names - PLANTED_BUGS)
    if unknown:
        raise ConfigError(f"PLANTED_BUG: unknown bug {', '.join(unknown)} (known: {', '.join(sorted(PLANTED_BUGS))})")
    return names


def load_or_exit(service: str) -> Settings:
    """Settings for ``service``'s main(): a bad variable exits 2 with one line, no traceback."""
    env = dict(os.environ)
    env.setdefault("RQ_SERVICE", service)
    try:
        return load(env)
    except ConfigError as err:
        print(f"audioroom.{service}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
