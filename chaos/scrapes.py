"""Prometheus scrapes: parsed with prometheus-client, remembered per instance, differenced over a window.

A windowed probe is computed the way Prometheus computes
``histogram_quantile(0.99, rate(x[5s]))``: from the *increase* of each
counter (and each histogram bucket, which is a counter) between the scrape
at the start of the window and the scrape just taken, per instance, then
summed over the instances. A counter that went down between two scrapes was
reset (its process restarted): as in Prometheus, its increase across that
step is its new value.

The history lives with the running stack it was scraped from (one per stack
object, kept by ``history_for``), so every reader of that stack (runner,
game-day dashboard, Python tests) shares it, and it ends with the stack.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chaos.perstack import PerStack

LabelSet = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
SeriesKey = tuple[str, LabelSet]  # (sample name, labels)
Sample = tuple[str, dict[str, str], float]

MIN_KEEP_S = 2.0  # history kept even when no window asked for more (two scrapes make a rate)
MAX_KEEP_S = 600.0  # the longest window a probe may ask for


def parse_samples(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition, via prometheus-client's parser."""
    out: list[Sample] = []
    # Imported here: the parser (and prometheus_client) is only needed once a run scrapes.
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.append((s.name, dict(s.labels), float(s.value)))
    return out


@dataclass(frozen=True)
class Scrape:
    """One instance's metrics at monotonic time ``t`` (when the scrape completed)."""

    t: float
    values: dict[SeriesKey, float]

    @classmethod
    def of(cls, samples: Iterable[Sample], t: float | None = None) -> "Scrape":
        values: dict[SeriesKey, float] = {}
        for name, labels, value in samples:
            if name.endswith("_created"):  # a creation timestamp, not a count
                continue
            values[(name, tuple(sorted(labels.items())))] = value
        return cls(time.monotonic() if t is None else t, values)

    def samples(self) -> list[Sample]:
        return [(name, dict(labels), value) for (name, labels), value in self.values.items()]


def increase(scrapes: list[Scrape]) -> dict[SeriesKey, float]:
    """Increase of every series of the last scrape over ``scrapes`` (oldest first), resets counted as in Prometheus.

    A series absent from the first scrape started inside the window (a labelled
    child created lazily, a restarted process): it counts from zero.
    """
    last = scrapes[-1]
    out: dict[SeriesKey, float] = {}
    for key in last.values:
        first = scrapes[0].values.get(key)
        total, previous = 0.0, (first if first is not None else 0.0)
        for scrape in scrapes[1:]:
            value = scrape.values.get(key)
            if value is None:
                continue
            total += value - previous if value >= previous else value
            previous = value
        out[key] = total
    return out


class ScrapeHistory:
    """Recent scrapes per (service, instance, path), pruned to the longest window asked for."""

    def __init__(self) -> None:
        self._scrapes: dict[tuple[str, str, str], deque[Scrape]] = {}
        self._keep_s = MIN_KEEP_S
        self._lock = threading.Lock()

    def want(self, window_s: float) -> None:
        """A probe will ask for this window: keep at least that much (plus one scrape before it)."""
        with self._lock:
            self._keep_s = min(MAX_KEEP_S, max(self._keep_s, window_s + 1.0))

    def add(self, service: str, instance: str, path: str, scrape: Scrape) -> None:
        with self._lock:
            kept = self._scrapes.setdefault((service, instance, path), deque())
            if kept and kept[-1].t > scrape.t:  # scrapes overlap: keep time order
                ordered = sorted([*kept, scrape], key=lambda s: s.t)
                kept.clear()
                kept.extend(ordered)
            else:
                kept.append(scrape)
            # keep one scrape older than the window: it is the window's start
            while len(kept) > 2 and kept[1].t < scrape.t - self._keep_s:
                kept.popleft()

    def window(self, service: str, instance: str, path: str, end: Scrape, window_s: float) -> list[Scrape] | None:
        """Scrapes from the window's start to ``end``: the last one at or before ``end.t - window_s``
        (or the oldest kept, for a window not yet full). None with fewer than two scrapes."""
        with self._lock:
            kept = [s for s in self._scrapes.get((service, instance, path), ()) if s.t <= end.t]
        if not kept or kept[-1] is not end:
            kept = [s for s in kept if s is not end] + [end]
        start = 0
        for i, scrape in enumerate(kept):
            if scrape.t <= end.t - window_s:
                start = i
        span = kept[start:]
        return span if len(span) >= 2 else None


_HISTORIES: PerStack[ScrapeHistory] = PerStack(ScrapeHistory)


def history_for(stack: Any) -> ScrapeHistory:
    """The scrape history of this running stack (created on first use, gone with the stack)."""
    return _HISTORIES.of(stack)


def matches(labels: Mapping[str, str] | LabelSet, wanted: Mapping[str, str]) -> bool:
    have = labels if isinstance(labels, Mapping) else dict(labels)
    return all(have.get(k) == v for k, v in wanted.items())
