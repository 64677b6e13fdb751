"""Server loss on instances (containers or processes): kill, stop, pause, restart, disconnect, squeeze."""

from __future__ import annotations

from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Registrar
from chaos.run.targets import resolve


def _bring_back(ctx: FaultContext, name: str) -> None:
    """Undo of kill/stop: start it again unless something (a restart policy) already did."""
    states = {i.name: i.state for i in ctx.stack.instances()}
    if states.get(name) != "running":
        ctx.stack.start(name)


def inject(step: m.ServerFault, step_id: str, ctx: FaultContext, done: Registrar) -> None:
    for name in resolve(step.target, ctx.stack, ctx.rng):
        if isinstance(step, m.KillFault):
            ctx.stack.kill(name)
            done(name, lambda name=name: _bring_back(ctx, name))
        elif isinstance(step, m.StopFault):
            ctx.stack.stop(name)
            done(name, lambda name=name: _bring_back(ctx, name))
        elif isinstance(step, m.PauseFault):
            ctx.stack.pause(name)
            done(name, lambda name=name: ctx.stack.resume(name))
        elif isinstance(step, m.RestartFault):
            ctx.stack.restart(name)
            done(name, None)  # it is back already: nothing to undo
        elif isinstance(step, m.DisconnectFault):
            ctx.stack.disconnect(name)
            done(name, lambda name=name: ctx.stack.reconnect(name))
        elif isinstance(step, m.SqueezeFault):
            ctx.stack.squeeze(name, cpus=step.cpus, memory_mb=step.memory_mb)
            done(name, lambda name=name: ctx.stack.unsqueeze(name))
        else:
            raise TypeError(f"not a server fault: {step!r}")
