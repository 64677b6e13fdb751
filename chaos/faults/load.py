"""Load faults: a join surge or a drain of the crowd, through the stack's load actions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from chaos.experiment.durations import Duration
from chaos.experiment.fields import Fraction
from chaos.faults.base import Fault, FaultContext, Part, PathKey, StackFacts, register
from chaos.faults.model import FaultBase


class SurgeFault(FaultBase):
    fault: Literal["surge"]
    listeners: int = Field(ge=1, description="extra listeners joining")
    over: Duration = Field(0.0, description="spread the joins over this long")
    room: str | None = Field(None, description="default: the load's room")


class DrainFault(FaultBase):
    fault: Literal["drain"]
    fraction: Fraction = Field(description="share of connected listeners that leave")


class LoadAction(Fault[Any]):
    """The stack file's load action of the fault's name (``surge``, ``drain``); joins and leaves cannot be taken back."""

    def check(self, step: Any, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        if step.fault not in stack.spec.load:
            yield ("fault",), f"stack {stack.spec.name} declares no load action {step.fault!r}"


class Surge(LoadAction):
    def prepare(self, step: SurgeFault, step_id: str, ctx: FaultContext) -> list[Part]:
        params: dict[str, Any] = {"listeners": step.listeners, "over_s": step.over}
        room = step.room or ctx.scope.get("room")  # default: where the run's load is (else the action's own default)
        if room is not None:
            params["room"] = room

        def surge() -> None:
            ctx.stack.load("surge", **params)

        return [Part(f"room {params.get('room', '(default)')}: +{step.listeners} listeners", surge)]


class Drain(LoadAction):
    def prepare(self, step: DrainFault, step_id: str, ctx: FaultContext) -> list[Part]:
        def drain() -> None:
            ctx.stack.load("drain", fraction=step.fraction)

        return [Part(f"drain {step.fraction:.0%}", drain)]


register(SurgeFault, Surge())
register(DrainFault, Drain())
