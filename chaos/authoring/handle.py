"""StackHandle: a running stack for a Python-authored test, plus waiting on its probes."""

from __future__ import annotations

import threading
import time
from typing import Any

from chaos.experiment.expect import Expectation, parse_expectation
from chaos.run import checks


def expectation(expect: Any) -> Expectation:
    """``"live"``, ``">= 0.9"``, ``{"one_of": [...]}``, as in experiment files."""
    if isinstance(expect, Expectation):
        return expect
    try:
        return parse_expectation(expect)
    except ValueError as err:
        raise ValueError(f"expect {expect!r}: {err}") from None


class StackHandle:
    """Everything of chaos.stack.RunningStack (probe, select, kill, links, ...), plus:

    * ``room``: the room this test should use (a fresh name on a reused stack);
    * ``start_load(listeners, ramp_s)``: create the room and let the crowd join it;
    * ``wait_for(probe, expect, within)``: poll until the expectation holds, else AssertionError
      naming the probe, the expectation and what was observed.
    """

    def __init__(self, stack: Any, room: str = "launch", reused: bool = False) -> None:
        self.stack = stack
        self.room = room
        self.reused = reused
        self._t0 = time.monotonic()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stack, name)

    def _params(self, probe: str, params: dict[str, Any]) -> dict[str, Any]:
        declared = getattr(self.stack.spec.probes.get(probe), "params", None) or {}
        if "room" in declared and "room" not in params:
            params = {**params, "room": self.room}
        return params

    def probe(self, name: str, **params: Any) -> Any:
        """A stack probe; room-scoped probes read this test's room unless ``room=`` is given."""
        return self.stack.probe(name, **self._params(name, params))

    def select(self, selector: str, **params: Any) -> list[str]:
        if "room" not in params:
            params["room"] = self.room
        return self.stack.select(selector, **params)

    def start_load(self, listeners: int = 30, ramp_s: float = 1.0, **params: Any) -> None:
        self.stack.load("start", room=self.room, listeners=listeners, ramp_s=ramp_s, **params)

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
        seen = []
        while True:
            value = self.stack.probe(probe, **params)
            seen.append((round(self.now(), 2), value))
            if not wanted.holds(value):
                raise AssertionError(f"{probe}: expected {wanted} throughout {for_s}s; observed {value!r} at t={seen[-1][0]}s")
            if time.monotonic() >= end:
                return
            time.sleep(every)
