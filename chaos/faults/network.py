"""Network faults on a link, through the Toxiproxy API (ours or a real Toxiproxy).

Each toxic fault is its model (the keys an experiment gives) and one
registration saying which toxic does it, with its attributes in Toxiproxy's
units; ``down`` disables the link's proxies (a partition).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pydantic import Field, model_validator

from chaos.experiment.durations import Duration
from chaos.faults.base import Fault, FaultContext, Part, PathKey, StackFacts, Undo, register
from chaos.faults.model import LinkFault
from chaos.faults.targets import check_link, check_target, link_proxies
from chaos.faults.undo import undo_op


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def toxic_name(run_id: str, step: str, stream: str) -> str:
    """Names carry the run id, so a later sweep can tell our toxics from anyone else's."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"rq.{run_id}.{step}.{stream}")


def toxic_parts(
    ctx: FaultContext, proxies: list[str], step_id: str, kind: str, attrs: dict[str, Any],
    streams: list[str], toxicity: float,
) -> list[Part]:
    """One part per proxy and stream: add the toxic; its undo removes it."""
    client = ctx.proxy  # the client exists before the fault is due

    def part(proxy: str, stream: str) -> Part:
        def do() -> Undo:
            name = client.add_toxic(
                proxy, kind, stream=stream, toxicity=toxicity, attributes=attrs,
                name=toxic_name(ctx.run_id, step_id, stream),
            )
            return ("proxy", "remove_toxic", proxy, name)

        return Part(f"{proxy}/{stream}", do)

    return [part(proxy, stream) for proxy in proxies for stream in streams]


@undo_op("proxy", "remove_toxic")
def _remove_toxic(ctx: FaultContext, proxy: str, name: str) -> None:
    ctx.proxy.remove_toxic(proxy, name)


@undo_op("proxy", "set_enabled")
def _set_enabled(ctx: FaultContext, proxy: str, enabled: str) -> None:
    ctx.proxy.set_enabled(proxy, enabled == "true")


class OnLink(Fault[LinkFault]):
    """A fault on the proxies of a link (narrowed by the step's target)."""

    def check(self, step: LinkFault, stack: StackFacts) -> Iterator[tuple[PathKey, str]]:
        if step.target is not None:
            yield from ((("target", *path), message) for path, message in check_target(step.target, stack))
        yield from check_link(step.link, stack)

    def proxies(self, step: LinkFault, ctx: FaultContext) -> list[str]:
        return link_proxies(step.link, ctx.stack, step.target, ctx.rng)


class Toxic(OnLink):
    """A link fault done by one Toxiproxy toxic on each of the link's proxies, per stream."""

    def __init__(self, toxic: str, attributes: Callable[[Any], dict[str, Any]]) -> None:
        self.toxic = toxic
        self.attributes = attributes

    def toxic_of(self, step: LinkFault) -> tuple[str, dict[str, Any]]:
        """Toxiproxy toxic type and attributes (in Toxiproxy's units)."""
        return self.toxic, self.attributes(step)

    def prepare(self, step: LinkFault, step_id: str, ctx: FaultContext) -> list[Part]:
        streams: list[str] = ["upstream", "downstream"] if step.direction == "both" else [step.direction]
        return toxic_parts(ctx, self.proxies(step, ctx), step_id, self.toxic, self.attributes(step), streams, step.toxicity)


class Disable(OnLink):
    """The link's proxies refuse and drop connections until rolled back."""

    def prepare(self, step: LinkFault, step_id: str, ctx: FaultContext) -> list[Part]:
        client = ctx.proxy

        def part(proxy: str) -> Part:
            def do() -> Undo:
                client.set_enabled(proxy, False)
                return ("proxy", "set_enabled", proxy, "true")

            return Part(proxy, do)

        return [part(proxy) for proxy in self.proxies(step, ctx)]


class LatencyFault(LinkFault):
    fault: Literal["latency"]
    latency: Duration
    jitter: Duration = 0.0


class JitterFault(LinkFault):
    fault: Literal["jitter"]
    jitter: Duration
    latency: Duration = 0.0


class BandwidthFault(LinkFault):
    fault: Literal["bandwidth"]
    rate: int = Field(ge=0, description="KB/s (1 KB = 1000 bytes); 0 = unlimited")


class SlowCloseFault(LinkFault):
    fault: Literal["slow_close"]
    delay: Duration


class TimeoutFault(LinkFault):
    fault: Literal["timeout"]
    timeout: Duration = Field(0.0, description="close after this long without data; 0 = never close")


class ResetPeerFault(LinkFault):
    fault: Literal["reset_peer"]
    timeout: Duration = 0.0


class SlicerFault(LinkFault):
    fault: Literal["slicer"]
    average_size: int = Field(ge=1, description="bytes")
    size_variation: int = Field(0, ge=0, description="bytes, below average_size")
    delay: Duration = Field(0.0, description="pause between slices")

    @model_validator(mode="after")
    def _variation(self) -> SlicerFault:
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be below average_size")
        return self


class LimitDataFault(LinkFault):
    fault: Literal["limit_data"]
    bytes: int = Field(ge=0, description="pass this many bytes per connection and direction, then close")


class DownFault(LinkFault):
    fault: Literal["down"]


def _latency(step: Any) -> dict[str, Any]:
    return {"latency": ms(step.latency), "jitter": ms(step.jitter)}


register(LatencyFault, Toxic("latency", _latency))
register(JitterFault, Toxic("latency", _latency))
register(BandwidthFault, Toxic("bandwidth", lambda s: {"rate": s.rate}))
register(SlowCloseFault, Toxic("slow_close", lambda s: {"delay": ms(s.delay)}))
register(TimeoutFault, Toxic("timeout", lambda s: {"timeout": ms(s.timeout)}))
register(ResetPeerFault, Toxic("reset_peer", lambda s: {"timeout": ms(s.timeout)}))
register(SlicerFault, Toxic("slicer", lambda s: {"average_size": s.average_size, "size_variation": s.size_variation,
                                                 "delay": int(round(s.delay * 1_000_000))}))  # microseconds
register(LimitDataFault, Toxic("limit_data", lambda s: {"bytes": s.bytes}))
register(DownFault, Disable())
