"""Server loss on instances (containers or processes): kill, stop, pause, restart, disconnect, squeeze.

Each is one stack operation on every instance its target picks, undone by
another (or by nothing: a restarted instance is back already).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

from pydantic import Field, model_validator

from chaos.faults.base import Fault, FaultContext, Part, PathKey, StackFacts, Undo, register
from chaos.faults.model import ServerFault
from chaos.faults.targets import check_target, resolve
from chaos.faults.undo import undo_op

CONTAINERS = frozenset({"docker", "swarm"})  # backends whose instances are containers
S = TypeVar("S", bound=ServerFault)


class OnInstances(Fault[S]):
    """``act(stack, instance, step)`` on each target instance; ``undo`` names the stack undo that reverts it."""

    def __init__(self, act: Callable[[Any, str, S], None], undo: str | None,
                 backends: frozenset[str] | None = None, needs: str = "") -> None:
        self.act = act
        self.undo = undo
        self.backends = backends
        self.needs = needs

    def check(self, step: S, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        yield from ((("target", *path), message) for path, message in check_target(step.target, stack))

    def prepare(self, step: S, step_id: str, ctx: FaultContext) -> list[Part]:
        def part(name: str) -> Part:
            undo: Undo | None = ("stack", self.undo, name) if self.undo else None

            def do() -> Undo | None:
                self.act(ctx.stack, name, step)
                return undo

            # in the ledger before it acts: a stop on swarm scales the service to 0, then waits for the task
            # to end; a runner killed in that wait must still have it started again (each undo below finds
            # nothing to undo if the fault never acted)
            return Part(name, do, ahead=undo)

        return [part(name) for name in resolve(step.target, ctx.stack, ctx.rng)]


@undo_op("stack", "start_if_down")
def _start_if_down(ctx: FaultContext, name: str) -> None:
    """Start it again, unless something (a restart policy, the system) did already."""
    states = {i.name: i.state for i in ctx.stack.instances()}
    if states.get(name) != "running":
        ctx.stack.start(name)


@undo_op("stack", "resume")
def _resume(ctx: FaultContext, name: str) -> None:
    ctx.stack.resume(name)


@undo_op("stack", "reconnect")
def _reconnect(ctx: FaultContext, name: str) -> None:
    ctx.stack.reconnect(name)


@undo_op("stack", "unsqueeze")
def _unsqueeze(ctx: FaultContext, name: str) -> None:
    ctx.stack.unsqueeze(name)


class KillFault(ServerFault):
    fault: Literal["kill"]


class StopFault(ServerFault):
    fault: Literal["stop"]


class PauseFault(ServerFault):
    fault: Literal["pause"]


class RestartFault(ServerFault):
    fault: Literal["restart"]


class DisconnectFault(ServerFault):
    fault: Literal["disconnect"]


class SqueezeFault(ServerFault):
    fault: Literal["squeeze"]
    cpus: float | None = Field(None, gt=0, description="CPU limit, e.g. 0.2")
    memory_mb: int | None = Field(None, ge=6, description="memory limit in MB")

    @model_validator(mode="after")
    def _something(self) -> SqueezeFault:
        if self.cpus is None and self.memory_mb is None:
            raise ValueError("squeeze needs cpus or memory_mb")
        return self


register(KillFault, OnInstances(lambda stack, name, step: stack.kill(name), undo="start_if_down"))
register(StopFault, OnInstances(lambda stack, name, step: stack.stop(name), undo="start_if_down"))
register(PauseFault, OnInstances(lambda stack, name, step: stack.pause(name), undo="resume"))
register(RestartFault, OnInstances(lambda stack, name, step: stack.restart(name), undo=None))  # it is back already
# docker disconnects the container from the run's network; swarm drops its packets in its namespace instead
# (a swarm task connected again by hand loses its name on the overlay).
register(DisconnectFault, OnInstances(lambda stack, name, step: stack.disconnect(name), undo="reconnect",
                                      backends=CONTAINERS, needs="containers"))
register(SqueezeFault, OnInstances(lambda stack, name, step: stack.squeeze(name, cpus=step.cpus, memory_mb=step.memory_mb),
                                   undo="unsqueeze", backends=CONTAINERS, needs="containers"))
