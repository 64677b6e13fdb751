"""A fault schedule: which faults of the space, when, for how long; and how it reads as an experiment's method.

Times are whole tenths of a second, so that a schedule has one spelling (its
``key``) and Hypothesis shrinks them towards 0 (``at``) and the shortest
allowed ``for``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos.explore.space import Atom


@dataclass(frozen=True)
class Limits:
    """The shape of the schedules drawn: how many faults, how late they start, how long they last (seconds)."""

    max_faults: int = 3
    horizon: float = 8.0  # the latest start of a fault, in method time
    min_for: float = 0.5
    max_for: float = 8.0


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
