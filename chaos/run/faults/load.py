"""Load faults: a join surge or a drain of the crowd, through the stack's load actions."""

from __future__ import annotations

from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Registrar


def inject(step: m.SurgeFault | m.DrainFault, step_id: str, ctx: FaultContext, done: Registrar) -> None:
    if isinstance(step, m.SurgeFault):
        room = step.room or ctx.room
        ctx.stack.load("surge", room=room, listeners=step.listeners, over_s=step.over)
        done(f"room {room}: +{step.listeners} listeners", None)  # joins cannot be taken back
    else:
        ctx.stack.load("drain", fraction=step.fraction)
        done(f"drain {step.fraction:.0%}", None)
