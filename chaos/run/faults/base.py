"""What every fault handler gets and gives back.

A handler injects one step and registers an undo for each thing it did,
*as it does it*, so a step that fails half-way (the second of three kills)
still has its first half rolled back.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

Undo = Callable[[], None]


class Registrar(Protocol):
    def __call__(self, hit: str, undo: Undo | None) -> None: ...


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
