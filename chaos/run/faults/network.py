"""Network faults on a link, through the Toxiproxy API (ours or a real Toxiproxy)."""

from __future__ import annotations

from typing import Any

from chaos.experiment import model as m
from chaos.run.faults.base import FaultContext, Registrar, toxic_name
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


def add_toxics(
    ctx: FaultContext, proxies: list[str], step_id: str, kind: str, attrs: dict[str, Any],
    streams: list[str], toxicity: float, done: Registrar,
) -> None:
    for proxy in proxies:
        for stream in streams:
            name = ctx.proxy.add_toxic(
                proxy, kind, stream=stream, toxicity=toxicity, attributes=attrs,
                name=toxic_name(ctx.run_id, step_id, stream),
            )
            done(f"{proxy}/{stream}", ("proxy", "remove_toxic", proxy, name))


def inject(step: m.LinkFault, step_id: str, ctx: FaultContext, done: Registrar) -> None:
    proxies = link_proxies(step.link, ctx.stack, step.target, ctx.rng)
    if isinstance(step, m.DownFault):
        for proxy in proxies:
            ctx.proxy.set_enabled(proxy, False)
            done(proxy, ("proxy", "set_enabled", proxy, "true"))
        return
    kind, attrs = toxic_of(step)
    streams = ["upstream", "downstream"] if step.direction == "both" else [step.direction]
    add_toxics(ctx, proxies, step_id, kind, attrs, streams, step.toxicity, done)
