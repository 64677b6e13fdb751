"""Which relaunches did an injected fault explain? A pure attribution of the system's relaunch records.

A relaunch is explained by a fault when the failure that caused it began
while that fault was active (a one-shot fault with nothing to undo, such as
a load surge, only while it was injected): the record's ``failed_at`` (else its
``detected_at``, else ``completed_at``) lies between the fault's injection
and its rollback, widened by ``SLACK_S`` on both sides (a failure is dated
by the last heartbeat or frame seen, up to one interval before the fault
hit; clocks of the processes differ by a little). Any other relaunch is
*unexpected*: nothing the experiment did can explain it (a starved machine,
a flapping detector, a bug).

The toolkit does not judge which kind of fault could cause which kind of
relaunch: any active fault explains any relaunch. So an unexpected relaunch
is certainly one nobody asked for, while a flap during a fault (no-flap's
latency) is caught by that experiment's own assertions, not here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

SLACK_S = 1.0


@dataclass(frozen=True)
class FaultWindow:
    step: str
    start: float  # run seconds: the injection began
    end: float | None  # run seconds: rolled back (None: still active when the records were read)


@dataclass(frozen=True)
class Attributed:
    generation: int | None
    reason: str | None
    failed_t: float | None  # run seconds (None: the record has no time)
    completed_t: float | None
    explained_by: list[str]  # fault steps active when the failure began

    @property
    def unexpected(self) -> bool:
        return not self.explained_by

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "unexpected": self.unexpected}


def _t(record: Mapping[str, Any], key: str, t0_wall: float) -> float | None:
    value = record.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value) - t0_wall, 4)
    return None


def attribute(records: Iterable[Mapping[str, Any]], faults: Iterable[FaultWindow], t0_wall: float,
              slack_s: float = SLACK_S) -> list[Attributed]:
    """Each relaunch record (wall-clock seconds) with the faults that explain it, in run seconds."""
    windows = list(faults)
    out = []
    for record in records:
        failed = _t(record, "failed_at", t0_wall)
        detected = _t(record, "detected_at", t0_wall)
        completed = _t(record, "completed_at", t0_wall)
        began = next((x for x in (failed, detected, completed) if x is not None), None)
        explained = [] if began is None else [
            w.step for w in windows
            if w.start - slack_s <= began and (w.end is None or began <= w.end + slack_s)
        ]
        gen = record.get("generation")
        out.append(Attributed(gen if isinstance(gen, int) else None, record.get("reason"), failed if failed is not None else began,
                              completed, explained))
    return out
