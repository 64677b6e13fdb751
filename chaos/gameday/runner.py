"""A runner that waits for the operator before each fault, and can be halted at any moment.

While it waits for a confirmation the method's clock is paused: every later
step, rollback and window moves by the time waited (faults already active
stay active meanwhile). A halt rolls back every fault at once, through the
runner's own end-of-run path, the same as an abort condition. Only the
runner's public hooks are used (timeline_offset, before_fault, abort, check_stop).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from chaos.experiment.model import FaultBase
from chaos.run.runner import Runner
from chaos.gameday.events import Halted, OperatorNote, StepConfirmed, StepWaiting


def describe(step: Any) -> str:
    """One line for a method step, as the plan shows it."""
    data = step.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"id", "description", "at"})
    kind = data.pop("fault", None) or ("check " + str(data.pop("probe", "")))
    rest = ", ".join(f"{k}={v}" for k, v in data.items())
    return f"{kind} {rest}".strip()


class GameDayRunner(Runner):
    def __init__(self, *args: Any, auto: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auto = auto
        self.offset = 0.0  # seconds the method's clock has been paused for the operator
        self._go = threading.Event()
        self.waiting_for: str | None = None
        self.halted = False

    # --- operator actions (called from the input thread) ---------------------------

    def advance(self) -> None:
        self._go.set()

    def note(self, text: str) -> None:
        self.emit(OperatorNote(message=text))

    def halt(self, by: str = "key") -> None:
        if self.halted:
            return
        self.halted = True
        active = [a.step for a in self.active if a.rolled_back_t is None]
        self.emit(Halted(by=by, active=active))
        self.abort(f"halted by the operator ({by}); every fault rolled back", condition="halt")
        self._go.set()

    # --- Runner hooks: the clock and the steps ---------------------------------------

    def timeline_offset(self) -> float:
        return self.offset

    def before_fault(self, step_id: str, step: FaultBase) -> None:
        """Wait for the operator; the time waited pauses the method's clock."""
        if self.auto:
            self.emit(StepConfirmed(step=step_id, waited_s=0.0, auto=True))
            return
        self._go.clear()
        self.waiting_for = step_id
        self.emit(StepWaiting(step=step_id, description=describe(step)))
        started = time.monotonic()
        try:
            while not self._go.wait(0.1):
                self.check_stop()
            self.check_stop()
        finally:
            self.waiting_for = None
        waited = time.monotonic() - started
        self.offset += waited
        self.emit(StepConfirmed(step=step_id, waited_s=round(waited, 3)))
