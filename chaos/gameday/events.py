"""Game-day events: they travel on the run's one event stream and land in its journal."""

from __future__ import annotations

from dataclasses import dataclass

from chaos.run.events import Event


@dataclass(frozen=True, kw_only=True)
class OperatorNote(Event):
    message: str


@dataclass(frozen=True, kw_only=True)
class StepWaiting(Event):
    step: str
    description: str


@dataclass(frozen=True, kw_only=True)
class StepConfirmed(Event):
    step: str
    waited_s: float
    auto: bool = False


@dataclass(frozen=True, kw_only=True)
class Halted(Event):
    by: str  # "key" | "signal"
    active: list[str]  # steps whose faults were active when the halt came
