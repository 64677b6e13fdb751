"""Judging probes: once, within a deadline, after a disturbance, or throughout a window.

Each judgement returns an ``Outcome`` whose message says which assertion,
what was expected, what was observed and when, e.g.

    recovery[1] crowd.connected_ratio: expected >= 0.9 within 30s of method end;
    not met by t=41.20s; last observed 0.42 at t=41.18s (min 0.10, max 0.45, 120 samples)

A recovery is judged from the sampler's reads (``Read``: when the read
started, when its value was in hand, the value): the probe must first be
seen failing on a read that *started* once the fault's injection began, then
passing on a later read whose value was in hand by the deadline. A check
that held at no read before the fault (a change the fault must bring: the
room on another edge, a counter risen) failed from the start: its last read
before the fault is its disturbance, so a change faster than the reads (a
relaunch while a starved machine had no read in flight) is still timed. A
probe that never failed was not disturbed: nothing recovered, no recovery time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import tenacity

from chaos.experiment.durations import format_duration
from chaos.experiment.expect import Expectation
from chaos.run.observe import Read, Watch

Reader = Callable[[], Any]
EVIDENCE_WAIT_S = 2.0  # how long a check whose deadline has passed waits for one read to show in its message


@dataclass
class Outcome:
    ok: bool
    message: str
    observed: list[tuple[float, Any]] = field(default_factory=list)
    status: str = ""  # ok | failed | not_disturbed ("" : ok or failed, from ok)
    disturbed_at: float | None = None  # t of the first failing read after the fault
    disturbed_by: str | None = None  # "value" (read, and not as expected) | "unreadable" (no value)
    recovery_s: float | None = None  # anchor -> first pass after the disturbance; None when not disturbed
    back_during_s: float | None = None  # back before the clock started (during a fault with for): injection -> pass
    passed_with: tuple[float, Any] | None = None  # the read that passed it (t, value): later reads may differ

    @property
    def outcome(self) -> str:
        return self.status or ("ok" if self.ok else "failed")


@dataclass(frozen=True)
class Assessment:
    first_fail: Read | None  # the first read (started at or after ``since``) that failed, else see failing_before
    first_ok: Read | None  # the first passing read (after ``first_fail`` when a disturbance is required)
    reads: list[Read]
    failing_before: int = 0  # >0: first_fail is the last of this many reads before ``since``, none of which held


def failed_all_along(reads: list[Read], expect: Expectation, since: float) -> tuple[Read, int] | None:
    """The last read begun before ``since`` and how many there were, when none of them held and the last had a
    value: the check was failing when the fault began (it asks for a change the fault must bring). One read
    that held before it (the room live, the crowd connected) means the fault must be seen breaking it."""
    before = [r for r in reads if r.started < since]
    if not before or any(expect.holds(r.value) for r in before):
        return None
    last = max(before, key=lambda r: r.t)
    return (last, len(before)) if last.value is not None else None


def assess(reads: list[Read], expect: Expectation, since: float, end: float, disturbance: bool) -> Assessment:
    """Pure judgement of reads: only reads started at or after ``since`` and in hand by ``end`` count (and, for a
    check that held at no read before ``since``, its last read before it as the disturbance)."""
    eligible = sorted((r for r in reads if r.started >= since and r.t <= end), key=lambda r: r.t)
    if not disturbance:
        return Assessment(None, next((r for r in eligible if expect.holds(r.value)), None), eligible)
    first_fail = next((r for r in eligible if not expect.holds(r.value)), None)
    failing_before = 0
    if first_fail is None:
        found = failed_all_along(reads, expect, since)
        if found is None:
            return Assessment(None, None, eligible)
        first_fail, failing_before = found
    first_ok = next((r for r in eligible if r.t > first_fail.t and expect.holds(r.value)), None)
    return Assessment(first_fail, first_ok, eligible, failing_before)


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
        return Outcome(True, f"{label}: observed {format_value(value)}, expected {expect}, at t={t:.2f}s", [(t, value)])
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
        t = now()
        observed.append((t, value))
        return expect.holds(value) and t <= end_t  # a value in hand after the deadline never passes

    def pause(seconds: float) -> None:  # tenacity's sleep: cut short when the run stops
        stop.wait(min(seconds, max(0.0, end_t - now())))

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(max(0.0, end_t - now())) | tenacity.stop_when_event_set(stop),
        wait=tenacity.wait_fixed(every),
        retry=tenacity.retry_if_result(lambda ok: not ok),
        sleep=pause,
        retry_error_callback=lambda state: False,
    )
    ok = retrying(attempt)
    when = f"within {format_duration(deadline_s)} of {anchor_name}"
    if ok:
        t, value = observed[-1]
        took = max(0.0, t - anchor_t)
        return Outcome(True, f"{label}: observed {format_value(value)}, expected {expect}, after {took:.2f}s ({when})", observed,
                       passed_with=(t, value))
    if observed and observed[-1][0] > end_t and expect.holds(observed[-1][1]):
        t, value = observed[-1]
        return Outcome(False, f"{label}: expected {expect} {when}; observed {format_value(value)} only at t={t:.2f}s, "
                              f"{t - anchor_t:.2f}s after {anchor_name} (past the deadline)", observed)
    if stop.is_set() and now() < end_t:
        return Outcome(False, f"{label}: stopped before its deadline ({when}); last observed {_last(observed)}", observed)
    return Outcome(
        False,
        f"{label}: expected {expect} {when}; not met by t={now():.2f}s; last observed {_last(observed)} ({_summary(observed)})",
        observed,
    )


def from_reads(
    label: str, reads: Callable[[], list[Read]], expect: Expectation, now: Callable[[], float], stop: threading.Event,
    *, since: float, anchor_t: float, deadline_s: float, anchor_name: str,
    disturbance: bool = False, since_name: str = "", undisturbed_ok: bool = False, poll: float = 0.05,
) -> Outcome:
    """Wait until the reads settle the question or the deadline passes, then judge them.

    ``disturbance``: a recovery; the probe must fail on a read started at or
    after ``since`` (the fault's injection) before a pass counts, and the
    recovery time runs from ``anchor_t`` to that pass. Without it: the first
    pass after ``since`` (steady state, method checks).
    """
    end = anchor_t + deadline_s
    when = f"within {format_duration(deadline_s)} of {anchor_name}"
    while True:
        closed = now() > end  # read before the reads: every read in hand by the deadline is in the snapshot
        snapshot = reads()
        found = assess(snapshot, expect, since, end, disturbance)
        if found.first_ok is not None or closed or stop.is_set():
            break
        stop.wait(poll)
    # a deadline already past when judging began (a very short one): wait a little for one read made
    # after `since`, so that the message can say what the probe showed (it cannot pass any more)
    waited_until = now() + EVIDENCE_WAIT_S
    while found.first_ok is None and not stop.is_set() and now() < waited_until:
        if any(r.started >= since for r in snapshot):
            break
        stop.wait(poll)
        snapshot = reads()
    # what was observed, for the message and the journal: also what came in after the deadline (it does not count)
    observed = [(r.t, r.value) for r in sorted(snapshot, key=lambda r: r.t) if r.started >= since]
    ok = found.first_ok
    if ok is not None:
        took = max(0.0, ok.t - anchor_t)
        if not disturbance:
            return Outcome(True, f"{label}: observed {format_value(ok.value)}, expected {expect}, after {took:.2f}s ({when})",
                           observed, passed_with=(ok.t, ok.value))
        fail = found.first_fail
        assert fail is not None
        by = "unreadable" if fail.value is None else "value"
        # Back while the fault still lasted: 0 s from its end is true but says little, so the time from
        # the fault's injection is kept beside it (and shown instead).
        during = round(ok.t - since, 4) if ok.t < anchor_t else None
        early = (f" (already back at t={ok.t:.2f}s, {during:.2f}s after {since_name or 'the fault began'}, "
                 f"before {anchor_name})" if during is not None else "")
        return Outcome(
            True,
            f"{label}: observed {format_value(ok.value)}, expected {expect}, after {took:.2f}s ({when}){early}; "
            f"{_disturbed(found, since_name)}",
            observed, disturbed_at=fail.t, disturbed_by=by, recovery_s=round(took, 4), back_during_s=during,
            passed_with=(ok.t, ok.value),
        )
    if stop.is_set() and not closed:
        return Outcome(False, f"{label}: stopped before its deadline ({when}); last observed {_last(observed)}", observed)
    fail = found.first_fail
    if disturbance and fail is None:
        if not found.reads:
            return Outcome(False, f"{label}: expected {expect} {when}; no sample of the probe was in hand between "
                                  f"{since_name} (t={since:.2f}s) and the deadline (t={end:.2f}s): nothing to judge by; "
                                  f"last observed {_last(observed)}", observed)
        verdict = ("accepted (undisturbed: pass)" if undisturbed_ok else
                   "a recovery check that sees no disturbance measures nothing; set undisturbed: pass if that is acceptable")
        return Outcome(
            undisturbed_ok,
            f"{label}: not disturbed: {expect} held at all {len(found.reads)} samples from {since_name} "
            f"(t={since:.2f}s) to the deadline (t={end:.2f}s){_held_before(snapshot, expect, since)}, "
            f"so nothing recovered and no recovery time is recorded; {verdict}",
            observed, status="not_disturbed",
        )
    disturbed = f"; {_disturbed(found, since_name)}" if fail is not None else ""
    return Outcome(
        False,
        f"{label}: expected {expect} {when}; not met by t={end:.2f}s{disturbed}; last observed {_last(observed)} "
        f"({_summary(observed)})",
        observed, disturbed_at=fail.t if fail is not None else None,
        disturbed_by=None if fail is None else ("unreadable" if fail.value is None else "value"),
    )


def rise_from(label: str, expect: Expectation, reads: list[Read], since: float, since_name: str) -> Expectation | Outcome:
    """Bind a ``{rises_by: N}`` to the probe's last read started before ``since`` (the fault's injection):
    ``>= that + N``. A counter that something else moved before the fault (a relaunch nobody injected) then
    still measures the fault; the bound value is in the message. No such read: a failed Outcome saying so."""
    if expect.op != "rises_by":
        return expect
    before = [r for r in reads if r.started < since and r.value is not None]
    if not before:
        return Outcome(False, f"{label}: expected {expect}, but no read of the probe was in hand before {since_name} "
                              f"(t={since:.2f}s): nothing to rise from")
    last = max(before, key=lambda r: r.started)
    try:
        return expect.from_baseline(last.value, last.t)
    except ValueError as err:
        return Outcome(False, f"{label}: {err}")


def _held_before(snapshot: list[Read], expect: Expectation, since: float) -> str:
    """Why a check may be undisturbed: its probe already held before the fault (a counter that something
    else, e.g. a relaunch nobody injected, had already moved), so the fault cannot be told from it."""
    before = [r for r in snapshot if r.started < since and r.value is not None]
    if not before:
        return ""
    last = max(before, key=lambda r: r.t)
    if not expect.holds(last.value):
        return ""
    return f" and already before it ({format_value(last.value)} at t={last.t:.2f}s)"


def _disturbed(found: Assessment, since_name: str) -> str:
    """Where the disturbance was seen: a failing read after the fault began, or failing all along before it."""
    fail = found.first_fail
    assert fail is not None
    shown = "unreadable" if fail.value is None else format_value(fail.value)
    if found.failing_before:
        return (f"disturbed from the start: not met at any of the {found.failing_before} reads begun before "
                f"{since_name or 'the fault began'} (the last: {shown} at t={fail.t:.2f}s)")
    return f"disturbed at t={fail.t:.2f}s ({shown})"


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
