"""A histogram cheap enough to observe every received frame (~100,000 a second per crowd).

prometheus_client's Histogram takes a lock and walks its buckets on each
observe; here an observation is one ``bisect`` and one list increment, and a
collector turns the counts into Prometheus histograms (seconds) on scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

# Upper bounds in milliseconds; 250 ms is a bound on purpose (the on-time threshold).
DELAY_BOUNDS_MS = (5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2000, 5000, 10000)
GAP_BOUNDS_MS = (50, 100, 110, 125, 150, 200, 250, 500, 1000, 2000, 5000, 10000, 30000)
JOIN_BOUNDS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


class FastHistogram:
    __slots__ = ("bounds", "counts", "total", "sum")

    def __init__(self, bounds_ms: Iterable[float]) -> None:
        self.bounds = tuple(bounds_ms)
        self.counts = [0] * (len(self.bounds) + 1)  # last: +Inf
        self.total = 0
        self.sum = 0.0

    def observe(self, value_ms: float) -> None:
        self.counts[bisect_left(self.bounds, value_ms)] += 1
        self.total += 1
        self.sum += value_ms

    def at_most(self, bound_ms: float) -> int:
        """Observations <= ``bound_ms`` (which must be one of the bounds)."""
        return sum(self.counts[: self.bounds.index(bound_ms) + 1])

    def quantile(self, q: float) -> float | None:
        """Estimated q-quantile in ms (linear within a bucket, like histogram_quantile)."""
        if not self.total:
            return None
        rank = q * self.total
        seen = 0
        lower = 0.0
        for i, count in enumerate(self.counts):
            upper = self.bounds[i] if i < len(self.bounds) else self.bounds[-1]
            if seen + count >= rank and count:
                if i == len(self.bounds):
                    return float(self.bounds[-1])
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
            lower = upper
        return float(self.bounds[-1])

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for i, count in enumerate(self.counts):
            running += count
            le = str(self.bounds[i] / 1000) if i < len(self.bounds) else "+Inf"
            cumulative.append((le, running))
        return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=self.sum / 1000)


class CallbackCollector(Collector):
    """Exposes histograms and counters whose values live in plain Python objects."""

    def __init__(self, histograms: dict[str, tuple[str, FastHistogram]], counters: dict[str, tuple[str, object]]):
        self.histograms = histograms
        self.counters = counters  # name -> (doc, zero-argument callable returning a number)

    def collect(self) -> Iterator[object]:
        for name, (doc, hist) in self.histograms.items():
            yield hist.family(name, doc)
        for name, (doc, read) in self.counters.items():
            family = CounterMetricFamily(name.removesuffix("_total"), doc)
            family.add_metric([], read())  # type: ignore[operator]
            yield family
