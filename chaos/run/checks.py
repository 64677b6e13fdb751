"""Judging probes: once, within a deadline (polled with tenacity), or throughout a window.

Each judgement returns an ``Outcome`` whose message says which assertion,
what was expected, what was observed and when, e.g.

    recovery[1] crowd.connected_ratio: expected >= 0.9 within 30s of method end;
    not met by t=41.20s; last observed 0.42 at t=41.18s (min 0.10, max 0.45, 120 samples)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import tenacity

from chaos.experiment.durations import format_duration
from chaos.experiment.expect import Expectation
from chaos.run.observe import Watch

Reader = Callable[[], Any]


@dataclass
class Outcome:
    ok: bool
    message: str
    observed: list[tuple[float, Any]] = field(default_factory=list)
    first_ok_t: float | None = None


def format_value(value: Any) -> str:
    """A probe value as people read it: floats to 4 significant digits, strings quoted."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _summary(observed: list[tuple[float, Any]]) -> str:
    numbers = [v for _, v in observed if isinstance(v, (int, float)) and not isinstance(v, bool)]
    parts = [f"{len(observed)} samples"]
    if numbers:
        parts.insert(0, f"min {format_value(min(numbers))}, max {format_value(max(numbers))}")
    missing = sum(1 for _, v in observed if v is None)
    if missing:
        parts.append(f"{missing} unreadable")
    return ", ".join(parts)


def once(label: str, read: Reader, expect: Expectation, now: Callable[[], float]) -> Outcome:
    value = read()
    t = now()
    if expect.holds(value):
        return Outcome(True, f"{label}: observed {format_value(value)}, expected {expect}, at t={t:.2f}s", [(t, value)], t)
    return Outcome(False, f"{label}: expected {expect}; observed {format_value(value)} at t={t:.2f}s", [(t, value)])


def within(
    label: str, read: Reader, expect: Expectation, now: Callable[[], float],
    anchor_t: float, deadline_s: float, every: float, stop: threading.Event, anchor_name: str,
) -> Outcome:
    """Poll until ``expect`` holds or ``anchor_t + deadline_s`` passes; the first pass is the recovery time."""
    observed: list[tuple[float, Any]] = []
    end_t = anchor_t + deadline_s

    def attempt() -> bool:
        value = read()
        observed.append((now(), value))
        return expect.holds(value)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(max(0.0, end_t - now())) | tenacity.stop_when_event_set(stop),
        wait=tenacity.wait_fixed(every),
        retry=tenacity.retry_if_result(lambda ok: not ok),
        sleep=lambda seconds: stop.wait(min(seconds, max(0.0, end_t - now()))),
        retry_error_callback=lambda state: False,
    )
    ok = retrying(attempt)
    when = f"within {format_duration(deadline_s)} of {anchor_name}"
    if ok:
        t, value = observed[-1]
        took = max(0.0, t - anchor_t)
        return Outcome(True, f"{label}: observed {format_value(value)}, expected {expect}, after {took:.2f}s ({when})", observed, t)
    if stop.is_set() and now() < end_t:
        return Outcome(False, f"{label}: stopped before its deadline ({when}); last observed {_last(observed)}", observed)
    return Outcome(
        False,
        f"{label}: expected {expect} {when}; not met by t={now():.2f}s; last observed {_last(observed)} ({_summary(observed)})",
        observed,
    )


def _last(observed: list[tuple[float, Any]]) -> str:
    if not observed:
        return "nothing (no sample)"
    t, value = observed[-1]
    return f"{format_value(value)} at t={t:.2f}s"


def window(label: str, watch: Watch, what: str) -> Outcome:
    """Judge a finished throughout/during window from the sampler's samples.

    It holds when every sample that could be read meets the expectation and
    at least half of the samples could be read: an unreadable sample (no
    value) is not evidence of a violation, but a window mostly unreadable
    (the service or the room gone) proves nothing and fails.
    """
    span = f"{what} (t={watch.start:.2f}s..{watch.end:.2f}s)"
    total, blind = len(watch.samples), len(watch.unreadable)
    if not total:
        return Outcome(False, f"{label}: expected {watch.expect} {span}; no sample was taken in the window")
    blind_note = f", {blind} unreadable" if blind else ""
    if watch.violations:
        shown = ", ".join(f"{format_value(v)} at t={t:.2f}s" for t, v in watch.violations[:3])
        more = f" and {len(watch.violations) - 3} more" if len(watch.violations) > 3 else ""
        return Outcome(
            False,
            f"{label}: expected {watch.expect} {span}; violated by {shown}{more} "
            f"({len(watch.violations)} of {total} samples{blind_note})",
            watch.samples,
        )
    if blind * 2 > total:
        first = watch.unreadable[0]
        return Outcome(False, f"{label}: expected {watch.expect} {span}; {blind} of {total} samples unreadable "
                              f"(from t={first:.2f}s): nothing to judge by", watch.samples)
    return Outcome(True, f"{label}: {watch.expect} held {span}, {_summary(watch.samples)}", watch.samples)
