"""Evaluating probe specs (chaos.probes) against a running stack: HTTP/JSON reads, Prometheus scrapes.

A probe reads one value from the stack, always directly (never through the
fault proxy, so faults do not distort what we measure). A value that cannot
be read (service down, room unknown, no samples yet) is ``None``: assertions
decide what ``None`` means, probes never guess.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chaos import scrapes
from chaos.probes import (HttpJsonProbe, HttpProbe, MetricProbe, ProbeSpec, QuantileProbe, RateProbe, RatioProbe,
                          StateProbe, TcpProbe, fill, window_seconds)

if TYPE_CHECKING:
    from chaos.stack.contract import LiveStack, ProbeValue

HTTP_TIMEOUT_S = 2.0
REASON_CHARS = 300  # of an error answer's body kept as the reason

# Why the last read on this thread gave no value (probe reads run on the sampler's threads):
# a None sample stays a None sample, and the runner can still say why ("HTTP 503 ...").
_why = threading.local()


def unreadable_reason() -> str | None:
    """Why the last probe read on this thread gave no value; None if it did, or if nothing is known."""
    reason: str | None = getattr(_why, "reason", None)
    return reason


def forget_unreadable() -> None:
    """Start a read with no reason on record (a stack that does not evaluate specs leaves none)."""
    _why.reason = None


def _unreadable(reason: str | None) -> None:
    _why.reason = reason


# --- reading -----------------------------------------------------------------------


def get_json(host: str, port: int, path: str, timeout: float = HTTP_TIMEOUT_S) -> Any | None:
    """GET a JSON document; None when the instance is unreachable or says 4xx/5xx (see unreadable_reason)."""
    import urllib.error  # here, not at the top: validating a file needs the specs, not HTTP (CLI start-up)
    import urllib.request

    where = f"{host}:{port}{path}"
    try:
        with urllib.request.urlopen(f"http://{where}", timeout=timeout) as reply:
            return json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as err:
        try:
            body = err.read(REASON_CHARS).decode("utf-8", "replace").strip()
        except OSError:
            body = ""
        _unreadable(f"HTTP {err.code} from {where}" + (f": {' '.join(body.split())}" if body else ""))
    except urllib.error.URLError as err:
        _unreadable(f"{where}: {err.reason}")
    except OSError as err:
        _unreadable(f"{where}: {type(err).__name__}: {err}".rstrip(": "))
    except ValueError as err:
        _unreadable(f"{where}: not JSON ({err})")
    return None


def get_text(host: str, port: int, path: str, timeout: float = HTTP_TIMEOUT_S) -> str | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as reply:
            body: bytes = reply.read()
            return body.decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return None


def dig(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.lstrip("-").isdigit() and -len(doc) <= int(part) < len(doc):
            doc = doc[int(part)]  # negative: from the end (-1 = the latest entry)
        else:
            return None
    return doc


Sample = scrapes.Sample
parse_samples = scrapes.parse_samples  # re-exported: tests and callers parse with it


def sum_samples(samples: Iterable[Sample], name: str, labels: Mapping[str, str]) -> float | None:
    """Sum of samples called ``name`` (a counter's ``_total`` name also matches its bare name)."""
    total, seen = 0.0, False
    names = {name, name + "_total"} if not name.endswith("_total") else {name}
    for sample_name, sample_labels, value in samples:
        if sample_name in names and scrapes.matches(sample_labels, labels):
            total += value
            seen = True
    return total if seen else None


def histogram_quantile(samples: Iterable[Sample], name: str, q: float, labels: Mapping[str, str]) -> float | None:
    """Prometheus-style quantile: linear interpolation inside the bucket holding rank q*count."""
    buckets: dict[float, float] = {}
    for sample_name, sample_labels, value in samples:
        if sample_name != name + "_bucket" or not scrapes.matches(sample_labels, labels):
            continue
        le = float(sample_labels["le"])
        buckets[le] = buckets.get(le, 0.0) + value
    if not buckets:
        return None
    bounds = sorted(buckets)
    count = buckets[bounds[-1]]
    if count <= 0:
        return None
    rank = q * count
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        upper_count = buckets[bound]
        if upper_count >= rank:
            if math.isinf(bound):
                return lower_bound  # beyond the last finite bucket: its bound is all we know
            if upper_count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (upper_count - lower_count)
        lower_bound, lower_count = bound, upper_count
    return bounds[-1]


# --- evaluation --------------------------------------------------------------------


def _targets(stack: LiveStack, service: str, instance: str | None) -> list[str]:
    if instance:
        return [instance]
    return [i.name for i in stack.instances(service) if i.state == "running"]


def _scrape_service(stack: LiveStack, service: str, metrics_path: str) -> list[tuple[str, scrapes.Scrape]] | None:
    """A fresh scrape of every running instance (never a remembered one); each also goes to the stack's history."""
    taken: list[tuple[str, scrapes.Scrape]] = []
    reached = False
    history = scrapes.history_for(stack)
    for name in _targets(stack, service, None):
        host, port = stack.address(name)
        text = get_text(host, port, metrics_path)
        if text is None:
            continue
        reached = True
        scrape = scrapes.Scrape.of(parse_samples(text))
        history.add(service, name, metrics_path, scrape)
        taken.append((name, scrape))
    return taken if reached else None


def _windowed(stack: LiveStack, service: str, metrics_path: str, taken: list[tuple[str, scrapes.Scrape]],
              window_s: float) -> tuple[list[Sample], list[tuple[list[Sample], float]]]:
    """Increases over the window: all instances' samples together, and per instance with its span (for rates)."""
    history = scrapes.history_for(stack)
    history.want(window_s)
    together: list[Sample] = []
    per_instance: list[tuple[list[Sample], float]] = []
    for name, scrape in taken:
        span = history.window(service, name, metrics_path, scrape, window_s)
        if span is None:  # a single scrape of this instance so far: no increase to measure yet
            continue
        grown = [(key[0], dict(key[1]), value) for key, value in scrapes.increase(span).items()]
        together.extend(grown)
        per_instance.append((grown, span[-1].t - span[0].t))
    return together, per_instance


def _quantile(values: list[float], q: float) -> float:
    """The q-quantile of observed values, linearly interpolated between the closest ranks."""
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _request_probe(spec: HttpProbe | TcpProbe, stack: LiveStack, merged: Mapping[str, Any]) -> ProbeValue:
    from chaos import responses

    names = _targets(stack, spec.service, fill(spec.instance, merged) if spec.instance else None)
    if not names:
        return None
    host, port = stack.address(names[0])
    if isinstance(spec, TcpProbe):
        return responses.tcp_accepts(host, port, timeout=spec.timeout_s)
    path = fill(spec.path, merged)
    answer = responses.request(host, port, path, spec.method, spec.timeout_s)
    ok = answer.status is not None and 200 <= answer.status < 400
    window = window_seconds(spec.window, merged) if spec.window is not None else None
    if window is None:
        measured: dict[str, ProbeValue] = {"status": answer.status, "latency": answer.seconds, "ok": ok}
        return measured[spec.measure]
    key = f"{spec.service}|{spec.instance or ''}|{spec.method}|{path}|{spec.timeout_s}"
    seen = responses.history_for(stack).add(key, answer, window)
    if spec.measure == "latency":
        return _quantile([r.seconds for r in seen], spec.q)
    return sum(1 for r in seen if r.status is not None and 200 <= r.status < 400) / len(seen)


def evaluate(
    spec: ProbeSpec,
    stack: LiveStack,
    params: Mapping[str, Any] | None = None,
    metrics_path: str = "/metrics",
) -> ProbeValue:
    """Read the probe's value now. ``params`` override the spec's defaults."""
    merged = {**spec.params, **(params or {})}
    forget_unreadable()
    if isinstance(spec, HttpJsonProbe):
        path, wanted = fill(spec.path, merged), fill(spec.field, merged)
        for name in _targets(stack, spec.service, fill(spec.instance, merged) if spec.instance else None):
            host, port = stack.address(name)
            doc = get_json(host, port, path)
            if doc is None:
                continue
            value = dig(doc, wanted)
            if value is None:
                _unreadable(f"no field {wanted!r} in {name}'s answer to {path}")
            if spec.subtract is None or value is None:
                field: ProbeValue = value  # a JSON value
                return field
            other = dig(doc, fill(spec.subtract, merged))
            if other is None:
                return None
            return float(value) - float(other)
        return None
    if isinstance(spec, (HttpProbe, TcpProbe)):
        return _request_probe(spec, stack, merged)
    if isinstance(spec, StateProbe):
        if spec.instance:
            name = fill(spec.instance, merged)
            found = [i for i in stack.instances() if i.name == name]
            return found[0].state if found else None
        states = [i.state for i in stack.instances(spec.service)]
        return float(sum(1 for s in states if s == (spec.count or "running")))
    window = window_seconds(getattr(spec, "window", None), merged, required=isinstance(spec, RateProbe))
    taken = _scrape_service(stack, spec.service, metrics_path)
    if taken is None:
        return None
    if window is None:
        samples = [sample for _, scrape in taken for sample in scrape.samples()]
    else:
        samples, per_instance = _windowed(stack, spec.service, metrics_path, taken, window)
        if not per_instance:
            return None
    if isinstance(spec, MetricProbe):
        return sum_samples(samples, spec.metric, fill(spec.labels, merged))
    if isinstance(spec, QuantileProbe):
        return histogram_quantile(samples, spec.metric, spec.q, fill(spec.labels, merged))
    if isinstance(spec, RateProbe):
        labels = fill(spec.labels, merged)
        rates = [grown / span for part, span in per_instance
                 if span > 0 and (grown := sum_samples(part, spec.metric, labels)) is not None]
        return sum(rates) if rates else None
    if isinstance(spec, RatioProbe):
        num = sum_samples(samples, spec.numerator.metric, fill(spec.numerator.labels, merged))
        den = sum_samples(samples, spec.denominator.metric, fill(spec.denominator.labels, merged))
        if num is None or not den:
            return None
        return num / den
    raise TypeError(f"not a probe spec: {spec!r}")
