"""What every fault handler gets and gives back.

A handler *prepares* one step: it resolves its targets and returns one
``Part`` per thing it will do (kill edge-2, add a toxic on crowd->edge-1),
each with the action and what undoes it. Doing the parts is separate, so
that the runner can resolve every fault of a parallel group before the
group's start time and then fire them all at once. Each part's undo is
registered *as it is done*, so a step that fails half-way (the second of
three kills) still has its first half rolled back.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# What undoes one part of a fault, as data: ("stack", "resume", "supervisor-2"),
# ("proxy", "remove_toxic", "edge->state-1", "rq...."). Being data, it can be
# written to the run's ledger and replayed by a later process after a SIGKILL.
Undo = tuple[str, ...]


def perform(undo: Undo, stack: Any, proxy: Any) -> None:
    target, op, *args = undo
    if target == "stack" and op == "start_if_down":
        states = {i.name: i.state for i in stack.instances()}
        if states.get(args[0]) != "running":
            stack.start(args[0])
    elif target == "stack":
        getattr(stack, op)(*args)
    elif target == "proxy" and op == "set_enabled":
        proxy.set_enabled(args[0], args[1] == "true")
    elif target == "proxy":
        getattr(proxy, op)(*args)
    else:
        raise ValueError(f"unknown undo {undo!r}")


class Registrar(Protocol):
    def __call__(self, hit: str, undo: Undo | None) -> None: ...


@dataclass(frozen=True)
class Part:
    """One thing a fault does: ``do()`` acts and returns the undo (None: nothing to undo)."""

    hit: str
    do: Callable[[], Undo | None]


def run_parts(parts: list[Part], done: Registrar) -> None:
    """Do the parts one after the other, registering each undo as soon as its part is done."""
    for part in parts:
        done(part.hit, part.do())


@dataclass
class FaultContext:
    stack: Any  # chaos.stack.RunningStack (or a fake in unit tests)
    proxy: Any  # chaos.proxy.client.ProxyClient-like, created lazily by the runner
    rng: random.Random
    run_id: str
    room: str = "launch"
    automation: str | None = None


@dataclass
class ActiveFault:
    """One injected step: what it hit and how to undo each part."""

    step: str
    fault: str
    params: dict[str, Any]
    injected_t: float | None = None
    parts: list[tuple[str, Undo | None]] = field(default_factory=list)
    rolled_back_t: float | None = None

    @property
    def hit(self) -> list[str]:
        return [name for name, _ in self.parts]


def toxic_name(run_id: str, step: str, stream: str) -> str:
    """Names carry the run id, so a later sweep can tell our toxics from anyone else's."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"rq.{run_id}.{step}.{stream}")
