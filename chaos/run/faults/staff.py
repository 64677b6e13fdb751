"""Staff reduction: the automation group loses replicas, gets lagging links, or freezes."""

from __future__ import annotations

import math

from chaos.errors import UsageError
from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Part, Undo
from chaos.run.faults.network import toxic_parts


def how_many(step: m.StaffReductionFault, replicas: int) -> int:
    if step.count is not None:
        return min(step.count, replicas)
    if step.fraction is not None:
        return min(replicas, max(1, math.floor(replicas * step.fraction + 0.5)))
    return replicas if step.mode == "pause" else min(replicas, max(1, math.floor(replicas * 0.75 + 0.5)))


def _member(step: m.StaffReductionFault, ctx: FaultContext, name: str) -> Part:
    def do() -> Undo:
        if step.mode == "remove":
            (ctx.stack.kill if step.removal == "kill" else ctx.stack.stop)(name)
            return ("stack", "start_if_down", name)
        ctx.stack.pause(name)
        return ("stack", "resume", name)

    return Part(name, do)


def prepare(step: m.StaffReductionFault, step_id: str, ctx: FaultContext) -> list[Part]:
    group = step.group
    if step.mode == "lag":
        proxies = [p.name for p in ctx.stack.links() if group in p.link.split("->")]
        if not proxies:
            raise UsageError(f"staff_reduction: the stack has no link to or from {group!r}")
        attrs = {"latency": int(round((step.latency or 0) * 1000)), "jitter": int(round(step.jitter * 1000))}
        return toxic_parts(ctx, sorted(proxies), step_id, "latency", attrs, ["upstream", "downstream"], 1.0)
    members = sorted(i.name for i in ctx.stack.instances(group) if i.state == "running")
    if not members:
        raise UsageError(f"staff_reduction: no running instance of {group!r}")
    chosen = sorted(ctx.rng.sample(members, how_many(step, len(members))))
    return [_member(step, ctx, name) for name in chosen]
