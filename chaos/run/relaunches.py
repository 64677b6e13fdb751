"""Relaunches as they happen, as events: the stack's relaunch counter, sampled with the key probes.

The counter is the stack probe whose name says ``relaunches`` (the report's
role of the same name, chaos.report.keyprobes; ``room.relaunches`` in the
reference stack). Each time a sample is higher than the one before, one
``RelaunchSeen`` goes on the event stream, so the progress display, the
journal and the game-day dashboard show the relaunch when the sampler sees
it. A stack without such a probe gets no relaunch events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chaos.run import events as ev


@dataclass
class RelaunchWatch:
    """Fed every sample of the counter (from sampler threads, in time order or late)."""

    key: str
    emit: Callable[[ev.Event], Any]
    last: int | None = None
    last_t: float = -1.0

    def feed(self, t: float, value: Any) -> None:
        if t < self.last_t or isinstance(value, bool) or not isinstance(value, (int, float)):
            return  # an overlapping read's older sample, or an unreadable one
        self.last_t = t
        count = int(value)
        if self.last is not None and count > self.last:
            self.emit(ev.RelaunchSeen(probe=self.key, count=count, previous=self.last,
                                      message=f"relaunch #{count} seen ({self.key}: {self.last} -> {count})"))
        self.last = count


def watch_relaunches(sampler: Any, declared: Iterable[str], params: Callable[[str], dict[str, Any]],
                     emit: Callable[[ev.Event], Any]) -> str | None:
    """Sample the stack's relaunch counter (if it declares one) and emit an event when it goes up."""
    from chaos.report.keyprobes import RELAUNCHES

    picked = RELAUNCHES.pick(sorted(declared))
    if not picked:
        return None
    key: str = sampler.add_probe(picked[0], params(picked[0]))
    sampler.watch(RelaunchWatch(key, emit))
    return key
