"""Staff reduction: the automation group loses replicas, gets lagging links, or freezes."""

from __future__ import annotations

import math

from chaos.errors import UsageError
from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Registrar
from chaos.run.faults.network import add_toxics


def how_many(step: m.StaffReductionFault, replicas: int) -> int:
    if step.count is not None:
        return min(step.count, replicas)
    if step.fraction is not None:
        return min(replicas, max(1, math.floor(replicas * step.fraction + 0.5)))
    return replicas if step.mode == "pause" else min(replicas, max(1, math.floor(replicas * 0.75 + 0.5)))


def inject(step: m.StaffReductionFault, step_id: str, ctx: FaultContext, done: Registrar) -> None:
    group = step.group
    if step.mode == "lag":
        proxies = [p.name for p in ctx.stack.links() if group in p.link.split("->")]
        if not proxies:
            raise UsageError(f"staff_reduction: the stack has no link to or from {group!r}")
        attrs = {"latency": int(round((step.latency or 0) * 1000)), "jitter": int(round(step.jitter * 1000))}
        add_toxics(ctx, sorted(proxies), step_id, "latency", attrs, ["upstream", "downstream"], 1.0, done)
        return
    members = sorted(i.name for i in ctx.stack.instances(group) if i.state == "running")
    if not members:
        raise UsageError(f"staff_reduction: no running instance of {group!r}")
    chosen = sorted(ctx.rng.sample(members, how_many(step, len(members))))
    for name in chosen:
        if step.mode == "remove":
            (ctx.stack.kill if step.removal == "kill" else ctx.stack.stop)(name)
            done(name, ("stack", "start_if_down", name))
        else:
            ctx.stack.pause(name)
            done(name, ("stack", "resume", name))
