"""Reading probes, recording their time series, and watching windows.

The sampler gives every key probe of the experiment its own thread that
reads it every ``sample_every`` (so one slow probe, e.g. on a paused
service, cannot slow the others below the rate), records ``(t, value)`` and
passes the sample to the watchers: ``throughout`` windows and abort
conditions are judged from these samples. It also keeps every read with the
time it *started* (``reads(key)``): recovery and deadline checks are judged
from those, so a value is never credited to a moment before it was asked for.
"""

from __future__ import annotations

import bisect
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from pydantic import TypeAdapter, ValidationError

from chaos.errors import UsageError
from chaos.problems import suggest
from chaos.stack.probes import forget_unreadable, unreadable_reason
from chaos.experiment.expect import Expectation

if TYPE_CHECKING:
    from chaos.probes import ProbeSpec
    from chaos.stack.contract import LiveStack, ProbeValue

Value = Any  # a probe's value as the journal keeps it: ProbeValue, or a number the sampler rounded


def probe_key(ref: str | dict[str, Any], params: dict[str, Any]) -> str:
    """A stable, readable name for a probe with its parameters (the journal's series key)."""
    name = ref if isinstance(ref, str) else "inline:" + json.dumps(ref, sort_keys=True, separators=(",", ":"))
    if not params:
        return name
    return name + "{" + ",".join(f"{k}={params[k]}" for k in sorted(params)) + "}"


_ERROR_LOG_LIMIT = 50  # entries per probe in the journal's error log


class ProbeReader:
    """Reads stack probes and inline probe specs; a failing read is ``None`` (and remembered)."""

    def __init__(self, stack: LiveStack) -> None:
        self.stack = stack
        self.errors: dict[str, str] = {}
        self._inline: dict[str, ProbeSpec] = {}

    def check(self, ref: str | dict[str, Any]) -> None:
        """Fail early, with one line, on a probe this stack cannot evaluate."""
        if isinstance(ref, dict):
            self._spec(ref)
            return
        known = self.stack.spec.probes
        if ref not in known:
            raise UsageError(f"unknown probe {ref!r}; {suggest(ref, known)}")

    def _spec(self, ref: dict[str, Any]) -> ProbeSpec:
        key = json.dumps(ref, sort_keys=True)
        if key not in self._inline:
            from chaos.probes import ProbeSpec

            try:
                self._inline[key] = TypeAdapter(ProbeSpec).validate_python(ref)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "probe"
                raise UsageError(f"inline probe {ref}: {where}: {first['msg']}") from None
        return self._inline[key]

    def read(self, ref: str | dict[str, Any], params: dict[str, Any]) -> ProbeValue:
        key = probe_key(ref, params)
        forget_unreadable()
        try:
            if isinstance(ref, dict):
                value = self.stack.probe_spec(self._spec(ref), **params)
            else:
                value = self.stack.probe(ref, **params)
        except UsageError:
            raise
        except Exception as err:  # noqa: BLE001 - an unreadable probe is a None sample, not a crash
            self.errors[key] = f"{type(err).__name__}: {err}"
            return None
        reason = unreadable_reason() if value is None else None
        if reason:
            self.errors[key] = reason  # e.g. "HTTP 503 from ...: state unreachable": said when a check fails
        else:
            self.errors.pop(key, None)
        return value


@dataclass(frozen=True)
class Read:
    """One read of a probe: when it started, when its value was in hand (the series' time), the value."""

    started: float
    t: float
    value: Value


@dataclass
class Series:
    """Time series of every sampled probe: key -> [(t, value)]."""

    data: dict[str, list[tuple[float, Value]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, t: float, value: Value) -> None:
        with self.lock:
            points = self.data.setdefault(key, [])
            point = (round(t, 4), value)
            if points and points[-1][0] > point[0]:  # reads overlap: keep the series in time order
                bisect.insort(points, point, key=lambda p: p[0])
            else:
                points.append(point)

    def to_json(self) -> dict[str, list[list[Any]]]:
        with self.lock:
            return {k: [[t, v] for t, v in points] for k, points in self.data.items()}


@dataclass
class Watch:
    """Judges samples of one probe: a throughout window or an abort condition."""

    key: str
    expect: Expectation
    start: float
    end: float
    samples: list[tuple[float, Value]] = field(default_factory=list)
    violations: list[tuple[float, Value]] = field(default_factory=list)  # read, and not as expected
    unreadable: list[float] = field(default_factory=list)  # no value (service slow or gone, room unknown)
    _seen: set[float] = field(default_factory=set)

    def feed(self, t: float, value: Value) -> None:
        if t in self._seen:  # a sample replayed from the series and also delivered live
            return
        self._seen.add(t)
        if self.start <= t <= self.end:
            self.samples.append((t, value))
            if self.expect.holds(value):
                return
            if value is None:
                self.unreadable.append(t)
            else:
                self.violations.append((t, value))


@dataclass
class AbortWatch:
    """Fires once the condition has held continuously for ``hold`` seconds."""

    key: str
    label: str
    expect: Expectation
    hold: float
    on_fire: Callable[[str, Value], None]
    since: float | None = None
    fired: bool = False
    armed: bool = True
    last_t: float = -1.0

    def feed(self, t: float, value: Value) -> None:
        if self.fired or not self.armed or t < self.last_t:  # overlapping reads: ignore a late, older sample
            return
        self.last_t = t
        if self.expect.holds(value):
            self.since = t if self.since is None else self.since
            if t - self.since >= self.hold:
                self.fired = True
                self.on_fire(f"abort condition {self.label} ({self.expect}) held, observed {value!r} at t={t:.2f}s", value)
        else:
            self.since = None


class Sampler:
    """Each key probe is read every ``every`` seconds; samples go to the series and to its watchers.

    A read that takes longer than the interval (a probe of a paused or
    starved service) does not slow the rate: up to ``IN_FLIGHT`` reads of one
    probe overlap, so the series keeps its >= 2 samples per second.
    """

    IN_FLIGHT = 3

    def __init__(self, reader: ProbeReader, now: Callable[[], float], every: float, stop: threading.Event) -> None:
        self.reader = reader
        self.now = now
        self.every = every
        self.series = Series()
        # why reads failed, for the journal and a failed check's message: key -> [(t, error)], a new
        # entry only when the error changes (a 10 s outage read 40 times is one or two lines)
        self.error_log: dict[str, list[tuple[float, str]]] = {}
        self._last_error: dict[str, tuple[float, str]] = {}
        self._probes: dict[str, tuple[str | dict[str, Any], dict[str, Any]]] = {}
        self._every: dict[str, float] = {}
        self._reads: dict[str, list[Read]] = {}
        self._watches: dict[str, list[Watch | AbortWatch]] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._halt = threading.Event()
        self._run_stop = stop
        self._pool: ThreadPoolExecutor | None = None
        self._busy: dict[str, int] = {}

    def add_probe(self, ref: str | dict[str, Any], params: dict[str, Any], every: float | None = None) -> str:
        """Sample this probe (at ``every`` if that is more often than the sampler's rate)."""
        key = probe_key(ref, params)
        self._probes.setdefault(key, (ref, params))
        self._every[key] = min(self._every.get(key, self.every), every or self.every)
        return key

    def reads(self, key: str) -> list[Read]:
        """Every read of ``key`` so far, in the order their values came in."""
        with self._lock:
            return list(self._reads.get(key, ()))

    def watch(self, watch: Watch | AbortWatch) -> None:
        with self._lock:
            self._watches.setdefault(watch.key, []).append(watch)

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.IN_FLIGHT * len(self._probes)), thread_name_prefix="probe")
        for key, (ref, params) in self._probes.items():
            thread = threading.Thread(target=self._loop, args=(key, ref, params), name=f"sample {key}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self, key: str, ref: str | dict[str, Any], params: dict[str, Any]) -> None:
        next_at = self.now()
        while not self._halt.is_set():
            with self._lock:
                free = self._busy.get(key, 0) < self.IN_FLIGHT
                if free:
                    self._busy[key] = self._busy.get(key, 0) + 1
            if free and self._pool is not None:
                try:
                    self._pool.submit(self._sample, key, ref, params)
                except RuntimeError:  # pool shut down: we are stopping
                    return
            next_at = max(next_at + self._every.get(key, self.every), self.now())
            self._halt.wait(max(0.0, next_at - self.now()))

    def _log_error(self, key: str, t: float) -> None:
        error = self.reader.errors.get(key) or "no value"
        self._last_error[key] = (round(t, 4), error)
        log = self.error_log.setdefault(key, [])
        if (not log or log[-1][1] != error) and len(log) < _ERROR_LOG_LIMIT:
            log.append((round(t, 4), error))

    def last_error(self, key: str) -> tuple[float, str] | None:
        """The latest logged reason a read of ``key`` failed."""
        with self._lock:
            return self._last_error.get(key)

    def _sample(self, key: str, ref: str | dict[str, Any], params: dict[str, Any]) -> None:
        try:
            started = self.now()
            try:
                value = self.reader.read(ref, params)
            except Exception as err:  # noqa: BLE001 - keep sampling the other probes
                self.reader.errors[key] = str(err)
                value = None
            if self._halt.is_set():
                return
            t = self.now()
            self.series.add(key, t, value)
            with self._lock:
                if value is None:
                    self._log_error(key, t)
                self._reads.setdefault(key, []).append(Read(started, t, value))
                watches = list(self._watches.get(key, ()))
            for watch in watches:
                watch.feed(t, value)
        finally:
            with self._lock:
                self._busy[key] -= 1

    def stop(self) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
