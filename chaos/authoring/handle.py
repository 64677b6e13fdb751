"""StackHandle: a running stack for a Python-authored test, plus waiting on its probes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chaos.experiment.expect import Expectation, parse_expectation
from chaos.run import checks

if TYPE_CHECKING:
    import docker

    from chaos.probes import ProbeSpec
    from chaos.proxy.client import ProxyClient
    from chaos.stack.contract import Instance, LinkProxy, LiveStack, ProbeValue
    from chaos.stack.spec import StackSpec


def expectation(expect: Any) -> Expectation:
    """``"live"``, ``">= 0.9"``, ``{"one_of": [...]}``, as in experiment files."""
    if isinstance(expect, Expectation):
        return expect
    try:
        return parse_expectation(expect)
    except ValueError as err:
        raise ValueError(f"expect {expect!r}: {err}") from None


class StackHandle:
    """The running stack of a Python-authored test: what ``chaos.stack.contract.LiveStack`` offers, plus

    * ``room``: the room this test should use (the stack file's load room; a fresh name on a reused stack);
    * ``start_load(listeners, ramp_s)``: create the room and let the crowd join it;
    * ``wait_for(probe, expect, within)``: poll until the expectation holds, else AssertionError
      naming the probe, the expectation and what was observed.
    """

    def __init__(self, stack: LiveStack, room: str | None = None, reused: bool = False) -> None:
        self.stack = stack
        self.room = room
        self.reused = reused
        self._t0 = time.monotonic()

    # --- the running stack's own (LiveStack) --------------------------------------

    @property
    def run_id(self) -> str:
        return self.stack.run_id

    @property
    def proxy_url(self) -> str:
        return self.stack.proxy_url

    @property
    def spec(self) -> StackSpec:
        return self.stack.spec

    @property
    def checkpoint(self) -> Callable[[], None]:
        return self.stack.checkpoint

    @checkpoint.setter
    def checkpoint(self, value: Callable[[], None]) -> None:
        self.stack.checkpoint = value

    @property
    def torn_down(self) -> bool:
        return self.stack.torn_down

    @property
    def backend_kind(self) -> str:
        return self.stack.backend_kind

    @property
    def automation(self) -> str | None:
        return self.stack.automation

    def instances(self, service: str | None = None) -> list[Instance]:
        return self.stack.instances(service)

    def address(self, instance: str) -> tuple[str, int]:
        return self.stack.address(instance)

    def links(self) -> list[LinkProxy]:
        return self.stack.links()

    def image_ids(self) -> dict[str, str]:
        return self.stack.image_ids()

    def log_text(self, instance: str, lines: int) -> str:
        return self.stack.log_text(instance, lines)

    def container_of(self, instance: str) -> tuple[docker.DockerClient, str] | None:
        return self.stack.container_of(instance)

    def proxy_client(self) -> ProxyClient:
        return self.stack.proxy_client()

    def kill(self, instance: str) -> None:
        self.stack.kill(instance)

    def stop(self, instance: str) -> None:
        self.stack.stop(instance)

    def start(self, instance: str) -> None:
        self.stack.start(instance)

    def restart(self, instance: str) -> None:
        self.stack.restart(instance)

    def pause(self, instance: str) -> None:
        self.stack.pause(instance)

    def resume(self, instance: str) -> None:
        self.stack.resume(instance)

    def disconnect(self, instance: str) -> None:
        self.stack.disconnect(instance)

    def reconnect(self, instance: str) -> None:
        self.stack.reconnect(instance)

    def squeeze(self, instance: str, cpus: float | None = None, memory_mb: int | None = None) -> None:
        self.stack.squeeze(instance, cpus=cpus, memory_mb=memory_mb)

    def unsqueeze(self, instance: str) -> None:
        self.stack.unsqueeze(instance)

    def probe_spec(self, spec: ProbeSpec, **params: Any) -> ProbeValue:
        return self.stack.probe_spec(spec, **params)

    def load(self, action: str, **params: Any) -> None:
        self.stack.load(action, **params)

    def leftovers(self) -> list[str]:
        return self.stack.leftovers()

    # --- scoped to the test's room, and waiting -------------------------------------

    def _params(self, probe: str, params: dict[str, Any]) -> dict[str, Any]:
        entry = self.stack.spec.probes.get(probe)
        if entry is not None and "room" in entry.params and "room" not in params and self.room is not None:
            params = {**params, "room": self.room}
        return params

    def probe(self, name: str, **params: Any) -> ProbeValue:
        """A stack probe; room-scoped probes read this test's room unless ``room=`` is given."""
        return self.stack.probe(name, **self._params(name, params))

    def select(self, selector: str, **params: Any) -> list[str]:
        if "room" not in params and self.room is not None:
            params["room"] = self.room
        return self.stack.select(selector, **params)

    def start_load(self, listeners: int = 30, ramp_s: float = 1.0, **params: Any) -> None:
        room = {"room": self.room} if self.room is not None else {}  # else: the load action's own default
        self.stack.load("start", **room, listeners=listeners, ramp_s=ramp_s, **params)

    def now(self) -> float:
        return time.monotonic() - self._t0

    def wait_for(self, probe: str, expect: Any, within: float, every: float = 0.1, **params: Any) -> Any:
        """Poll ``probe`` until ``expect`` holds; returns the value that met it."""
        wanted = expectation(expect)
        params = self._params(probe, params)
        anchor = self.now()
        outcome = checks.within(
            probe, lambda: self.stack.probe(probe, **params), wanted, self.now, anchor, within, every,
            threading.Event(), "the call",
        )
        if not outcome.ok:
            raise AssertionError(outcome.message)
        return outcome.observed[-1][1]

    def holds(self, probe: str, expect: Any, for_s: float, every: float = 0.1, **params: Any) -> None:
        """``expect`` must hold at every sample for ``for_s`` seconds, else AssertionError."""
        wanted = expectation(expect)
        params = self._params(probe, params)
        end = time.monotonic() + for_s
        seen: list[tuple[float, ProbeValue]] = []
        while True:
            value = self.stack.probe(probe, **params)
            seen.append((round(self.now(), 2), value))
            if not wanted.holds(value):
                raise AssertionError(f"{probe}: expected {wanted} throughout {for_s}s; observed {value!r} at t={seen[-1][0]}s")
            if time.monotonic() >= end:
                return
            time.sleep(every)
