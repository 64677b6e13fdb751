"""Network faults on a link, through the Toxiproxy API (ours or a real Toxiproxy)."""

from __future__ import annotations

from typing import Any

from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Part, Undo, toxic_name
from chaos.run.targets import link_proxies


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def toxic_of(step: m.LinkFault) -> tuple[str, dict[str, Any]]:
    """Toxiproxy toxic type and attributes (in Toxiproxy's units) for a link fault."""
    if isinstance(step, (m.LatencyFault, m.JitterFault)):
        return "latency", {"latency": _ms(step.latency), "jitter": _ms(step.jitter)}
    if isinstance(step, m.BandwidthFault):
        return "bandwidth", {"rate": step.rate}
    if isinstance(step, m.SlowCloseFault):
        return "slow_close", {"delay": _ms(step.delay)}
    if isinstance(step, m.TimeoutFault):
        return "timeout", {"timeout": _ms(step.timeout)}
    if isinstance(step, m.ResetPeerFault):
        return "reset_peer", {"timeout": _ms(step.timeout)}
    if isinstance(step, m.SlicerFault):
        delay_us = int(round(step.delay * 1_000_000))
        return "slicer", {"average_size": step.average_size, "size_variation": step.size_variation, "delay": delay_us}
    if isinstance(step, m.LimitDataFault):
        return "limit_data", {"bytes": step.bytes}
    raise TypeError(f"not a toxic fault: {step!r}")


def toxic_parts(
    ctx: FaultContext, proxies: list[str], step_id: str, kind: str, attrs: dict[str, Any],
    streams: list[str], toxicity: float,
) -> list[Part]:
    def part(proxy: str, stream: str) -> Part:
        def do() -> Undo:
            name = ctx.proxy.add_toxic(
                proxy, kind, stream=stream, toxicity=toxicity, attributes=attrs,
                name=toxic_name(ctx.run_id, step_id, stream),
            )
            return ("proxy", "remove_toxic", proxy, name)

        return Part(f"{proxy}/{stream}", do)

    return [part(proxy, stream) for proxy in proxies for stream in streams]


def _disable(ctx: FaultContext, proxy: str) -> Part:
    def do() -> Undo:
        ctx.proxy.set_enabled(proxy, False)
        return ("proxy", "set_enabled", proxy, "true")

    return Part(proxy, do)


def prepare(step: m.LinkFault, step_id: str, ctx: FaultContext) -> list[Part]:
    proxies = link_proxies(step.link, ctx.stack, step.target, ctx.rng)
    if isinstance(step, m.DownFault):
        return [_disable(ctx, proxy) for proxy in proxies]
    kind, attrs = toxic_of(step)
    streams = ["upstream", "downstream"] if step.direction == "both" else [step.direction]
    return toxic_parts(ctx, proxies, step_id, kind, attrs, streams, step.toxicity)
