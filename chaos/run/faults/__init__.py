"""Fault handlers by family; ``prepare`` resolves a method step into parts, ``inject`` prepares and does them."""

from __future__ import annotations

from chaos.experiment import model as m
from chaos.run.faults import load, network, server, staff
from chaos.run.faults.base import ActiveFault, FaultContext, Part, Registrar, run_parts, toxic_name


def prepare(step: m.FaultBase, step_id: str, ctx: FaultContext) -> list[Part]:
    """Resolve the step's targets (and need of clients) now; nothing is done to the stack yet."""
    if isinstance(step, m.LinkFault):
        return network.prepare(step, step_id, ctx)
    if isinstance(step, m.ServerFault):
        return server.prepare(step, step_id, ctx)
    if isinstance(step, m.StaffReductionFault):
        return staff.prepare(step, step_id, ctx)
    if isinstance(step, (m.SurgeFault, m.DrainFault)):
        return load.prepare(step, step_id, ctx)
    raise TypeError(f"no handler for fault {step!r}")


def inject(step: m.FaultBase, step_id: str, ctx: FaultContext, done: Registrar) -> None:
    run_parts(prepare(step, step_id, ctx), done)


__all__ = ["ActiveFault", "FaultContext", "Part", "Registrar", "inject", "prepare", "run_parts", "toxic_name"]
