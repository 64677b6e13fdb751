"""Staff reduction: the automation group loses replicas, gets lagging links, or freezes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

from pydantic import Field, model_validator

from chaos.errors import UsageError
from chaos.problems import suggest
from chaos.experiment.durations import Duration
from chaos.experiment.fields import Fraction, Name
from chaos.faults.base import Fault, FaultContext, Part, PathKey, StackFacts, Undo, register
from chaos.faults.model import FaultBase
from chaos.faults.network import ms, toxic_parts


class StaffReductionFault(FaultBase):
    """Degrade the automation: remove some of its replicas, lag its links, or pause it."""

    fault: Literal["staff_reduction"]
    group: Name | None = Field(None, description="the service that plays the automation (default: the stack file's automation)")
    mode: Literal["remove", "lag", "pause"] = "remove"
    removal: Literal["kill", "stop"] = Field(
        "kill", description="remove: kill (gone without handing over its work) or stop (a clean scale-down)"
    )
    fraction: Fraction | None = Field(None, description="remove/pause: share of replicas (rounded, at least 1)")
    count: int | None = Field(None, ge=1, description="remove/pause: this many replicas")
    latency: Duration | None = Field(None, description="lag: latency added on the group's links")
    jitter: Duration = 0.0

    @model_validator(mode="after")
    def _mode_fields(self) -> StaffReductionFault:
        if self.fraction is not None and self.count is not None:
            raise ValueError("choose fraction or count, not both")
        if self.mode == "lag" and self.latency is None:
            raise ValueError("mode lag needs latency, e.g. latency: 2s")
        if self.mode != "lag" and self.latency is not None:
            raise ValueError(f"latency applies to mode lag, not {self.mode}")
        return self


def how_many(step: StaffReductionFault, replicas: int) -> int:
    if step.count is not None:
        return min(step.count, replicas)
    if step.fraction is not None:
        return min(replicas, max(1, math.floor(replicas * step.fraction + 0.5)))
    return replicas if step.mode == "pause" else min(replicas, max(1, math.floor(replicas * 0.75 + 0.5)))


class StaffReduction(Fault[StaffReductionFault]):
    def check(self, step: StaffReductionFault, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        spec = stack.spec
        if step.group is None and spec.automation is None:
            yield ("fault",), f"stack {spec.name} declares no automation: name the group, e.g. group: supervisor"
        elif step.group is not None and step.group not in spec.services:
            yield ("group",), f"no service {step.group!r} in stack {spec.name}; {suggest(step.group, spec.services)}"

    def prepare(self, step: StaffReductionFault, step_id: str, ctx: FaultContext) -> list[Part]:
        group = step.group or ctx.stack.automation
        if not group:
            raise UsageError("staff_reduction: the stack declares no automation; name the group")
        if step.mode == "lag":
            proxies = [p.name for p in ctx.stack.links() if group in p.link.split("->")]
            if not proxies:
                raise UsageError(f"staff_reduction: the stack has no link to or from {group!r}")
            attrs = {"latency": ms(step.latency or 0), "jitter": ms(step.jitter)}
            return toxic_parts(ctx, sorted(proxies), step_id, "latency", attrs, ["upstream", "downstream"], 1.0)
        members = sorted(i.name for i in ctx.stack.instances(group) if i.state == "running")
        if not members:
            raise UsageError(f"staff_reduction: no running instance of {group!r}")
        chosen = sorted(ctx.rng.sample(members, how_many(step, len(members))))
        return [self._member(step, ctx, name) for name in chosen]

    @staticmethod
    def _member(step: StaffReductionFault, ctx: FaultContext, name: str) -> Part:
        def do() -> Undo:
            if step.mode == "remove":
                (ctx.stack.kill if step.removal == "kill" else ctx.stack.stop)(name)
                return ("stack", "start_if_down", name)  # chaos.faults.server's undo operations
            ctx.stack.pause(name)
            return ("stack", "resume", name)

        return Part(name, do)


register(StaffReductionFault, StaffReduction())
