"""One typed event stream for a run.

Every event is a small frozen dataclass; ``EventBus.emit`` stamps it with
monotonic time (seconds since the run started) and wall time, then hands it
to every subscriber. The journal, the progress display and a game-day
dashboard are all just subscribers: none of them needs code per event type
(``Event.to_json`` serialises any of them), unlike Chaos Toolkit's registry
that forwards each event through its own method.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, TypeVar

Subscriber = Callable[["Event"], None]


@dataclass(frozen=True, kw_only=True)
class Event:
    t: float = 0.0  # seconds since the run started (monotonic clock)
    wall: float = 0.0  # Unix time

    @classmethod
    def kind(cls) -> str:
        return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def to_json(self) -> dict[str, Any]:
        data = {"kind": self.kind(), **dataclasses.asdict(self)}
        data["t"] = round(self.t, 4)
        return data


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    run_id: str
    title: str
    file: str
    seed: int
    backend: str
    mode: str  # "bring_up" | "reuse" | "attach": how the run means to get its stack (StackReady says how it did)


@dataclass(frozen=True, kw_only=True)
class PhaseStarted(Event):
    phase: str  # bring_up, load, steady_state_before, method, recovery, steady_state_after, rollback, teardown


# How a run got its stack: started for it, kept running from an earlier
# experiment (a stack pool), or someone else's that it attached to.
StackOrigin = Literal["brought_up", "reused", "attached"]
ORIGIN_MODES: dict[str, str] = {"brought_up": "bring_up", "reused": "reuse", "attached": "attach"}


def stack_how(origin: str | None, attached: bool = False) -> str:
    """The words for a stack_ready event; journals older than ``origin`` only say ``attached``."""
    if origin is None:
        origin = "attached" if attached else "brought_up"
    return origin.replace("_", " ")


@dataclass(frozen=True, kw_only=True)
class StackReady(Event):
    backend: str
    instances: list[str]
    image_ids: dict[str, str]
    proxy_url: str
    attached: bool
    origin: StackOrigin = "brought_up"


@dataclass(frozen=True, kw_only=True)
class LoadChanged(Event):
    action: str  # start | surge | drain
    params: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class FaultInjected(Event):
    step: str
    fault: str
    hit: list[str]  # instances or proxies
    params: dict[str, Any]
    planned_at: float  # run time the timeline asked for
    began: float = 0.0  # run time the injection call started (anchor of recovery clocks)
    took_s: float = 0.0  # how long the injection call took (docker kill, toxic creation...)


@dataclass(frozen=True, kw_only=True)
class FaultRolledBack(Event):
    step: str
    fault: str
    hit: list[str]
    reason: str  # "for elapsed" | "end of run"
    ok: bool
    error: str | None = None
    active_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class CheckResult(Event):
    check: str
    phase: str
    probe: str
    expect: str
    mode: str
    ok: bool
    message: str
    observed: list[tuple[float, Any]] = field(default_factory=list)  # (t, value), latest last
    recovery_s: float | None = None  # recovery within: anchor -> first pass after an observed disturbance; else None
    back_during_s: float | None = None  # recovered before the anchor (the end of a fault with for): injection -> pass
    anchor: str | None = None
    outcome: str = ""  # ok | failed | not_disturbed (a recovery whose probe never failed after the fault)
    disturbed_at: float | None = None  # recovery within: t of the first failing read after the fault
    disturbed_by: str | None = None  # "value" | "unreadable"
    passed_with: tuple[float, Any] | None = None  # recovery within: the read that passed it (t, value)


@dataclass(frozen=True, kw_only=True)
class HistoryChecked(Event):
    """The listeners' histories were read and checked (chaos.checkers.history); assertions follow as CheckResults."""

    room: str
    listeners: int
    max_gap_p99_s: float | None
    never_heard_relaunch: int
    split_brain: int
    duplicates: int
    out_of_order: int
    back_within: list[dict[str, Any]]  # per relaunch: generation, listeners, fractions back
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class RelaunchesAudited(Event):
    """The system's relaunch records, each attributed to the faults active when its failure began."""

    room: str
    relaunches: list[dict[str, Any]]  # chaos.checkers.relaunches.Attributed.to_json()
    unexpected: int | None  # None: the stack declares no relaunch records, or none could be read
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class AbortTriggered(Event):
    reason: str
    condition: str | None = None
    observed: Any = None


@dataclass(frozen=True, kw_only=True)
class RunError(Event):
    phase: str
    message: str
    detail: str | None = None  # traceback for internal errors, never shown by default


@dataclass(frozen=True, kw_only=True)
class Note(Event):
    message: str


@dataclass(frozen=True, kw_only=True)
class RelaunchSeen(Event):
    """The stack's relaunch counter went up between two samples (chaos.run.relaunches)."""

    probe: str  # the sampled probe, e.g. room.relaunches{room=launch}
    count: int
    previous: int
    message: str = ""  # the same as one line, for readers that know no relaunch_seen


@dataclass(frozen=True, kw_only=True)
class VerdictReached(Event):
    verdict: str
    reason: str
    exit_code: int
    as_declared: bool | None = None


E = TypeVar("E", bound=Event)  # emit() gives back the event it was given, stamped


class EventBus:
    """Stamps and fans out events; thread-safe (the sampler and check workers emit too)."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.start

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: E) -> E:
        stamped = dataclasses.replace(event, t=self.now(), wall=time.time())
        with self._lock:
            for subscriber in list(self._subscribers):
                subscriber(stamped)
        return stamped
