"""latency: delays each chunk by latency ± jitter ms, counted from when it was read.

Chunks are pipelined (a chunk's delay starts when it is read, not when the
previous one leaves), so throughput is kept; stacked latencies add up because
the chunk's timestamp moves to its due time. A jitter of 0 or less is none,
as in Toxiproxy.
"""

from __future__ import annotations

from chaos.proxy.toxics.base import Stub, Toxic, register


@register
class Latency(Toxic):
    type_name = "latency"
    go_type = "LatencyToxic"
    fields = {"latency": "int64", "jitter": "int64"}
    latency: int
    jitter: int
    buffer_hint = 32 * 1024 * 1024  # Toxiproxy buffers 1024 chunks of up to 32 KiB

    async def pipe(self, stub: Stub) -> None:
        async for chunk in stub.chunks():
            delay: float = self.latency
            if self.jitter > 0:
                delay += stub.rng.uniform(-self.jitter, self.jitter)
            due = chunk.ts + delay / 1000.0
            await stub.sleep_until(due)
            chunk.ts = due
            stub.send(chunk)
