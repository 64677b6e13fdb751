"""Probe specs: what a probe reads (its evaluation against a running stack is chaos.stack.probes).

A probe reads one value from the stack, always directly (never through the
fault proxy, so faults do not distort what we measure). Kinds:

- ``http_json``: a field (dotted path) of a JSON document served by an
  instance, optionally minus another field (e.g. completed_at - detected_at);
- ``metric``: a Prometheus counter/gauge summed over a service's instances;
- ``quantile``: a histogram quantile over the buckets of all instances, since
  each process started or, with ``window: 5s``, over the last 5 s
  (Prometheus' ``histogram_quantile(q, rate(x[5s]))``);
- ``rate``: per-second increase of a counter over a ``window``, summed over instances;
- ``ratio``: one summed metric divided by another (with ``window``: their increases);
- ``state``: an instance's state, or how many instances of a service are in one;
- ``http``: one request the toolkit makes: its status, its response time, or
  whether it was OK (2xx/3xx); with ``window: 10s``, the q-quantile of the
  response times (or the share of OK answers) of the requests this probe's
  reads made in the last 10 s (chaos/responses.py);
- ``tcp``: whether a TCP connection to the instance is accepted (and kept).

Strings in a spec may hold ``{param}`` placeholders filled from the probe's
``params`` (defaults) and the caller's parameters. A value that cannot be
read (service down, room unknown, no samples yet) is ``None``: assertions
decide what ``None`` means, probes never guess.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaos import scrapes
from chaos.errors import UsageError
from chaos.experiment.durations import parse_duration


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    params: dict[str, Any] = Field(default_factory=dict, description="defaults for {placeholders}")
    description: str = ""


class HttpJsonProbe(_Spec):
    kind: Literal["http_json"]
    service: str
    instance: str | None = None
    path: str
    field: str = Field(description="dotted path into the JSON body, e.g. last_relaunch.completed_at")
    subtract: str | None = Field(default=None, description="dotted path subtracted from field")


class MetricRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)


class MetricProbe(_Spec):
    kind: Literal["metric"]
    service: str
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)


CUMULATIVE = "cumulative"
WINDOW_HELP = ("a duration such as 5s: computed from the increase over the last 5 s; "
               "'cumulative': since each process started; may be a {placeholder}")


def _valid_window(value: Any, required: bool) -> Any:
    """A window is a duration, ``cumulative``, or a ``{placeholder}`` checked when filled."""
    if value is None:
        if required:
            raise ValueError("a rate needs a window, e.g. window: 5s")
        return None
    if isinstance(value, str) and "{" in value:
        return value
    try:
        window_seconds(value, {}, required)
    except UsageError as err:
        raise ValueError(str(err)) from None
    return value


def window_seconds(raw: Any, params: Mapping[str, Any], required: bool = False) -> float | None:
    """Seconds of a (filled) window; None for cumulative values."""
    value = fill(raw, params) if isinstance(raw, str) else raw
    if value is None or (isinstance(value, str) and value.strip() == CUMULATIVE):
        if required:
            raise UsageError(f"window {raw!r}: a rate needs a duration, e.g. 5s")
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as err:
        raise UsageError(f"window {value!r}: {err} (or '{CUMULATIVE}')") from None
    if not 0 < seconds <= scrapes.MAX_KEEP_S:
        raise UsageError(f"window {value!r}: must be above 0 and at most {scrapes.MAX_KEEP_S:.0f}s")
    return seconds


class QuantileProbe(_Spec):
    kind: Literal["quantile"]
    service: str
    metric: str = Field(description="histogram name, without _bucket")
    q: float = Field(ge=0.0, le=1.0)
    labels: dict[str, str] = Field(default_factory=dict)
    window: str | float | None = Field(default=None, description=WINDOW_HELP + " (absent: cumulative)")

    @field_validator("window")
    @classmethod
    def _window(cls, value: Any) -> Any:
        return _valid_window(value, required=False)


class RateProbe(_Spec):
    kind: Literal["rate"]
    service: str
    metric: str = Field(description="counter name (with or without _total), or a histogram's _count")
    labels: dict[str, str] = Field(default_factory=dict)
    window: str | float = Field(description=WINDOW_HELP)

    @field_validator("window")
    @classmethod
    def _window(cls, value: Any) -> Any:
        return _valid_window(value, required=True)


class RatioProbe(_Spec):
    kind: Literal["ratio"]
    service: str
    numerator: MetricRef
    denominator: MetricRef
    window: str | float | None = Field(
        default=None, description=WINDOW_HELP + " (absent: the current values, right for gauges)")

    @field_validator("window")
    @classmethod
    def _window(cls, value: Any) -> Any:
        return _valid_window(value, required=False)


class StateProbe(_Spec):
    kind: Literal["state"]
    instance: str | None = None
    service: str | None = None
    count: str | None = Field(default=None, description="with service: count instances in this state")

    @model_validator(mode="after")
    def _one_target(self) -> "StateProbe":
        if bool(self.instance) == bool(self.service):
            raise ValueError("a state probe names exactly one of instance or service")
        return self


class HttpProbe(_Spec):
    kind: Literal["http"]
    service: str
    instance: str | None = None
    path: str = "/"
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE"] = "GET"
    measure: Literal["status", "latency", "ok"] = Field(
        default="status", description="status: the HTTP status (no answer: none); latency: seconds to the answer "
                                      "(a failed request counts the time it waited); ok: 2xx or 3xx")
    timeout_s: float = Field(default=5.0, gt=0, description="give up waiting for the answer after this long")
    window: str | float | None = Field(
        default=None, description="latency: the q-quantile over the requests of the window; ok: the share of OK "
                                  "answers in it (each read makes one request); may be a {placeholder}")
    q: float = Field(default=0.5, ge=0.0, le=1.0, description="with latency and a window: which quantile")

    @field_validator("window")
    @classmethod
    def _window(cls, value: Any) -> Any:
        return _valid_window(value, required=False)

    @model_validator(mode="after")
    def _window_fits(self) -> "HttpProbe":
        if self.window is not None and self.measure == "status":
            raise ValueError("a window applies to measure latency or ok, not to status")
        return self


class TcpProbe(_Spec):
    kind: Literal["tcp"]
    service: str
    instance: str | None = None
    timeout_s: float = Field(default=2.0, gt=0)


ProbeSpec = Annotated[
    Union[HttpJsonProbe, MetricProbe, QuantileProbe, RateProbe, RatioProbe, StateProbe, HttpProbe, TcpProbe],
    Field(discriminator="kind"),
]


# --- templating -------------------------------------------------------------------


def fill(value: Any, params: Mapping[str, Any]) -> Any:
    """Replace ``{name}`` in strings; a string that is only ``{name}`` keeps the param's type."""
    if isinstance(value, str):
        names = [f for _, f, _, _ in string.Formatter().parse(value) if f]
        missing = [n for n in names if n not in params]
        if missing:
            raise UsageError(f"missing parameter {missing[0]!r} for {value!r}")
        if len(names) == 1 and value == "{" + names[0] + "}":
            return params[names[0]]
        return value.format(**params)
    if isinstance(value, dict):
        return {k: fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, params) for v in value]
    return value
