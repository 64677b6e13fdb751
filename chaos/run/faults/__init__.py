"""Fault handlers by family; ``inject`` dispatches a method step to its handler."""

from __future__ import annotations

from chaos.experiment import model as m
from chaos.run.faults import load, network, server, staff
from chaos.run.faults.base import ActiveFault, FaultContext, Registrar, toxic_name


def inject(step: m.FaultBase, step_id: str, ctx: FaultContext, done: Registrar) -> None:
    if isinstance(step, m.LinkFault):
        network.inject(step, step_id, ctx, done)
    elif isinstance(step, m.ServerFault):
        server.inject(step, step_id, ctx, done)
    elif isinstance(step, m.StaffReductionFault):
        staff.inject(step, step_id, ctx, done)
    elif isinstance(step, (m.SurgeFault, m.DrainFault)):
        load.inject(step, step_id, ctx, done)
    else:
        raise TypeError(f"no handler for fault {step!r}")


__all__ = ["ActiveFault", "FaultContext", "Registrar", "inject", "toxic_name"]
