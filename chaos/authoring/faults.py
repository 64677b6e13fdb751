"""Faults as context managers that always roll back, on the same handlers the runner uses.

```python
faults = Faults(stack)
with faults.kill(hosting=stack.room) as hit:          # the edge hosting the test's room
    stack.wait_for("room.edge", f"!= {hit.names[0]}", within=10)
with faults.latency("edge->state", latency="300ms", jitter="50ms", direction="both"):
    stack.holds("room.relaunches", "== 0", for_s=3)
```

Each method builds the fault exactly as an experiment file would (same
model, same validation) and injects it with ``chaos.faults``; leaving
the block undoes every part, in reverse, even when the block raised or the
injection failed half-way.
"""

from __future__ import annotations

import contextlib
import itertools
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from chaos import faults as handlers
from chaos.authoring.handle import StackHandle
from chaos.errors import UsageError
from chaos.experiment import model as m
from chaos.faults import FaultContext, Injection
from chaos.faults.undo import roll_back

if TYPE_CHECKING:
    from chaos.proxy.client import ProxyClient
    from chaos.stack.contract import LiveStack

_STEP = TypeAdapter(m.FaultStep)
Injected = Injection  # what ``with faults.kill(...) as hit`` gives: ``hit.names``, ``hit.parts``, ``hit.rolled_back``


class RollbackFailed(RuntimeError):
    """Some part of a fault could not be undone (every other part still was)."""


class Faults:
    def __init__(self, stack: LiveStack, proxy: ProxyClient | None = None, seed: int = 0, run_id: str = "authored") -> None:
        # a StackHandle's room is where surges go by default
        self.room = stack.room if isinstance(stack, StackHandle) else None
        self.stack = stack.stack if isinstance(stack, StackHandle) else stack
        self.rng = random.Random(seed)
        self.run_id = run_id
        self._ids = itertools.count(1)
        self.active: list[Injection] = []
        self.ctx = FaultContext(self.stack, lambda: proxy if proxy is not None else self.stack.proxy_client(),
                                self.rng, run_id, {"room": self.room} if self.room else {})

    @property
    def proxy(self) -> ProxyClient:
        return self.ctx.proxy

    @staticmethod
    def build(spec: dict[str, Any]) -> m.FaultBase:
        """A fault step from a dict written as in an experiment file (``{"fault": "kill", "target": {...}}``)."""
        try:
            return _STEP.validate_python(spec)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("fault:")) or "fault"
            raise UsageError(f"fault {spec.get('fault')!r}: {where}: {first['msg']}") from None

    @contextlib.contextmanager
    def inject(self, spec: dict[str, Any] | m.FaultBase) -> Iterator[Injection]:
        step = spec if isinstance(spec, m.FaultBase) else self.build(spec)
        step_id = step.id or f"{step.fault}-{next(self._ids)}"
        injected = Injection(step_id, step.fault)
        self.active.append(injected)
        try:
            handlers.inject(step, step_id, self.ctx, injected.register)
            yield injected
        finally:
            self._undo(injected)

    def _undo(self, injected: Injection) -> None:
        errors = roll_back(injected, self.ctx)
        self.active.remove(injected)
        if errors:
            raise RollbackFailed(f"rolling back {injected.step} failed: " + "; ".join(errors))

    def roll_back_all(self) -> None:
        """Undo whatever is still active (a test that left a block open by other means)."""
        for injected in reversed(list(self.active)):
            self._undo(injected)

    # --- server loss ------------------------------------------------------------

    def _server(self, fault: str, target: dict[str, Any], **extra: Any) -> contextlib.AbstractContextManager[Injected]:
        if not target:
            raise UsageError(f"{fault}: name a target, e.g. service='edge' or hosting=stack.room")
        return self.inject({"fault": fault, "target": target, **extra})

    def kill(self, **target: Any) -> contextlib.AbstractContextManager[Injected]:
        """SIGKILL / docker kill; rolled back by starting it again if it is still down."""
        return self._server("kill", target)

    def stop(self, **target: Any) -> contextlib.AbstractContextManager[Injected]:
        return self._server("stop", target)

    def pause(self, **target: Any) -> contextlib.AbstractContextManager[Injected]:
        return self._server("pause", target)

    def restart(self, **target: Any) -> contextlib.AbstractContextManager[Injected]:
        return self._server("restart", target)

    def disconnect(self, **target: Any) -> contextlib.AbstractContextManager[Injected]:
        return self._server("disconnect", target)

    def squeeze(self, cpus: float | None = None, memory_mb: int | None = None, **target: Any) -> contextlib.AbstractContextManager[Injected]:
        extra = {k: v for k, v in (("cpus", cpus), ("memory_mb", memory_mb)) if v is not None}
        return self._server("squeeze", target, **extra)

    # --- network, on a link -------------------------------------------------------

    def link(self, fault: str, link: str, **attrs: Any) -> contextlib.AbstractContextManager[Injected]:
        """Any link fault by name: latency, jitter, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, down."""
        return self.inject({"fault": fault, "link": link, **attrs})

    def latency(self, link: str, latency: str | float, jitter: str | float = 0, **attrs: Any) -> contextlib.AbstractContextManager[Injected]:
        return self.link("latency", link, latency=latency, jitter=jitter, **attrs)

    def down(self, link: str, **attrs: Any) -> contextlib.AbstractContextManager[Injected]:
        """Partition: the link's proxies refuse and drop connections until the block ends."""
        return self.link("down", link, **attrs)

    # --- staff and load -------------------------------------------------------------

    def staff_reduction(self, group: str | None = None, **attrs: Any) -> contextlib.AbstractContextManager[Injected]:
        """The stack file's automation (or ``group``) loses replicas, lags or freezes."""
        return self.inject({"fault": "staff_reduction", **({"group": group} if group else {}), **attrs})

    def surge(self, listeners: int, over: str | float = "2s", room: str | None = None) -> contextlib.AbstractContextManager[Injected]:
        """Extra listeners join ``room`` (default: the handle's room, else the stack's surge action's)."""
        return self.inject({"fault": "surge", "listeners": listeners, "over": over, "room": room})

    def drain(self, fraction: float) -> contextlib.AbstractContextManager[Injected]:
        return self.inject({"fault": "drain", "fraction": fraction})
