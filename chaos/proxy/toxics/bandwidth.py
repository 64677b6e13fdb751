"""bandwidth: passes at most ``rate`` KB/s (1 KB = 1000 bytes).

Large chunks go out in 100 ms slices so the rate is smooth; the schedule is
kept on an absolute clock so timer round-up does not accumulate. A rate of 0
(or less) stalls the stream, as in Toxiproxy, until the toxic is updated or
removed: what it holds is then passed on.
"""

from __future__ import annotations

import time

from chaos.proxy.toxics.base import Chunk, Stub, Toxic, register


@register
class Bandwidth(Toxic):
    type_name = "bandwidth"
    go_type = "BandwidthToxic"
    fields = {"rate": "int64"}
    rate: int

    def mistakes(self) -> list[str]:
        return ["rate 0 or less stalls the stream (Toxiproxy does the same)"] if self.rate <= 0 else []

    async def pipe(self, stub: Stub) -> None:
        next_free = time.monotonic()  # when the pipe is free to send again
        async for chunk in stub.chunks():
            if self.rate <= 0:
                stub.hold(chunk)
                await stub.forever()
            per_byte = 1.0 / (self.rate * 1000.0)
            slice_size = max(1, self.rate * 100)  # 100 ms worth
            next_free = max(next_free, time.monotonic() - 0.1)  # idle time is not credit beyond 100 ms
            data = memoryview(chunk.data)
            while data:
                piece, data = data[:slice_size], data[slice_size:]
                next_free += len(piece) * per_byte
                await stub.sleep_until(next_free)
                stub.hold(Chunk(data, chunk.ts) if data else None)
                stub.send(Chunk(piece, chunk.ts))
