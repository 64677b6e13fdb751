"""Server loss on instances (containers or processes): kill, stop, pause, restart, disconnect, squeeze."""

from __future__ import annotations

from typing import Any

from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Part, Undo
from chaos.run.targets import resolve

# fault -> (stack operation, the operation that undoes it; None: nothing to undo)
OPERATIONS: dict[type, tuple[str, str | None]] = {
    m.KillFault: ("kill", "start_if_down"),
    m.StopFault: ("stop", "start_if_down"),
    m.PauseFault: ("pause", "resume"),
    m.RestartFault: ("restart", None),  # it is back already
    m.DisconnectFault: ("disconnect", "reconnect"),
    m.SqueezeFault: ("squeeze", "unsqueeze"),
}


def _part(step: m.ServerFault, stack: Any, name: str) -> Part:
    try:
        op, inverse = OPERATIONS[type(step)]
    except KeyError:
        raise TypeError(f"not a server fault: {step!r}") from None
    extra = {"cpus": step.cpus, "memory_mb": step.memory_mb} if isinstance(step, m.SqueezeFault) else {}

    def do() -> Undo | None:
        getattr(stack, op)(name, **extra)
        return ("stack", inverse, name) if inverse else None

    return Part(name, do)


def prepare(step: m.ServerFault, step_id: str, ctx: FaultContext) -> list[Part]:
    return [_part(step, ctx.stack, name) for name in resolve(step.target, ctx.stack, ctx.rng)]
