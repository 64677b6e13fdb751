"""Load faults: a join surge or a drain of the crowd, through the stack's load actions."""

from __future__ import annotations

from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Part


def prepare(step: m.SurgeFault | m.DrainFault, step_id: str, ctx: FaultContext) -> list[Part]:
    if isinstance(step, m.SurgeFault):
        room = step.room or ctx.room

        def surge() -> None:
            ctx.stack.load("surge", room=room, listeners=step.listeners, over_s=step.over)
            return None  # joins cannot be taken back

        return [Part(f"room {room}: +{step.listeners} listeners", surge)]

    def drain() -> None:
        ctx.stack.load("drain", fraction=step.fraction)
        return None

    return [Part(f"drain {step.fraction:.0%}", drain)]
