"""Server loss on instances (containers or processes): kill, stop, pause, restart, disconnect, squeeze."""

from __future__ import annotations

from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Registrar
from chaos.run.targets import resolve


def inject(step: m.ServerFault, step_id: str, ctx: FaultContext, done: Registrar) -> None:
    for name in resolve(step.target, ctx.stack, ctx.rng):
        if isinstance(step, m.KillFault):
            ctx.stack.kill(name)
            done(name, ("stack", "start_if_down", name))
        elif isinstance(step, m.StopFault):
            ctx.stack.stop(name)
            done(name, ("stack", "start_if_down", name))
        elif isinstance(step, m.PauseFault):
            ctx.stack.pause(name)
            done(name, ("stack", "resume", name))
        elif isinstance(step, m.RestartFault):
            ctx.stack.restart(name)
            done(name, None)  # it is back already: nothing to undo
        elif isinstance(step, m.DisconnectFault):
            ctx.stack.disconnect(name)
            done(name, ("stack", "reconnect", name))
        elif isinstance(step, m.SqueezeFault):
            ctx.stack.squeeze(name, cpus=step.cpus, memory_mb=step.memory_mb)
            done(name, ("stack", "unsqueeze", name))
        else:
            raise TypeError(f"not a server fault: {step!r}")
