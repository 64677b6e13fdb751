"""A fault schedule: which faults of the space, when, for how long; and how it reads as an experiment's method.

Times are whole tenths of a second, so that a schedule has one spelling (its
``key``) and Hypothesis shrinks them towards 0 (``at``) and the shortest
allowed ``for``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaos.explore.space import Atom

# Fault kinds that take their target instance out of service while active.
DOWN_KINDS = frozenset({"kill", "stop", "pause", "restart", "disconnect"})
# A restart holds nothing for its 'for' (the instance is back when the call returns): it counts as down this long
# (tenths of a second; a restart takes well under a second on local, about one on docker).
RESTART_DOWN = 10


@dataclass(frozen=True)
class Limits:
    """The shape of the schedules drawn: how many faults, how late they start, how long they last (seconds)."""

    max_faults: int = 3
    horizon: float = 8.0  # the latest start of a fault, in method time
    min_for: float = 0.5
    max_for: float = 8.0
    total_loss: bool = False  # also schedules that take every instance of a service with several down at once


@dataclass(frozen=True)
class Planned:
    """One fault of a schedule: atom ``atom`` with parameter choice ``level`` from ``at`` for ``for_`` (tenths of a second)."""

    atom: Atom
    at: int
    for_: int
    level: int = 0

    def step(self, step_id: str) -> dict[str, Any]:
        return self.atom.step(self.level, self.at / 10, self.for_ / 10, step_id)

    def describe(self) -> str:
        params = self.atom.chosen(self.level)
        extra = "".join(f" {k}={v}" for k, v in params.items())
        return f"{self.atom.label}{extra} at {self.at / 10:g}s for {self.for_ / 10:g}s"


@dataclass(frozen=True)
class Schedule:
    faults: tuple[Planned, ...]

    def ordered(self) -> list[Planned]:
        return sorted(self.faults, key=lambda p: (p.at, p.atom.label, p.for_, p.level))

    def method(self) -> list[dict[str, Any]]:
        """The experiment's method: one step per fault, each with its own ``at`` (so they may overlap), by start."""
        return [p.step(f"fault-{n}") for n, p in enumerate(self.ordered(), start=1)]

    def key(self) -> str:
        """One spelling per schedule (two draws of the same faults in another order are the same schedule)."""
        return "; ".join(p.describe() for p in self.ordered())

    def describe(self) -> str:
        return self.key() or "(no fault)"

    def overlaps(self) -> int:
        """Pairs of faults active at the same time."""
        spans = [(p.at, p.at + p.for_) for p in self.faults]
        return sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1])

    def loses_all(self, instances: Mapping[str, int]) -> str | None:
        """The first service of ``instances`` (service -> its instance count) that this schedule takes wholly down at
        some instant, or None.

        An instance is down while a fault of ``DOWN_KINDS`` on it is active. A selector's target is known only
        when it runs, so it counts as one more instance down in the service it picks (the stack file's
        ``service``), or in every service when it names none (never too few).
        """
        downs = [(p.at, p.at + (RESTART_DOWN if p.atom.fault == "restart" else p.for_), p.atom.place.get("target", {}),
                  p.atom.picks) for p in self.faults if p.atom.fault in DOWN_KINDS]
        for start, _, _, _ in downs:
            active = [(target, picks) for a, b, target, picks in downs if a <= start < b]
            for service, count in instances.items():
                named = {target.get("replica") for target, _ in active if target.get("service") == service}
                unknown = sum(1 for target, picks in active if "service" not in target and picks in (None, service))
                if len(named) + unknown >= count:
                    return service
        return None


def allowed(schedule: Schedule, limits: Limits, redundant: Mapping[str, int]) -> bool:
    """Whether the search may run ``schedule``: never every instance of a service of ``redundant`` (service ->
    instances, those with several) down at once, unless ``limits.total_loss``."""
    return limits.total_loss or not redundant or schedule.loses_all(redundant) is None
