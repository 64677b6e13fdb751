"""slicer: cuts chunks into pieces of about ``average_size`` ± ``size_variation``
bytes with ``delay`` µs between pieces (split in halves recursively, so
there is no bias to small or large pieces at either end).

Toxiproxy accepts any sizes (its defaults are 0); sizes it could not slice
with are made workable here: an average below 1 slices byte by byte and the
variation is kept below the average. Both are logged as mistakes.
"""

from __future__ import annotations

import random

from chaos.proxy.toxics.base import Chunk, Stub, Toxic, register


def cut_points(size: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Offsets 0 < p1 < ... < size at which to cut ``size`` bytes."""
    average = max(1, average)
    variation = min(max(0, variation), average - 1)
    points: list[int] = []
    stack = [(0, size)] if size > 0 else []
    while stack:  # depth-first, left half first: the points come out in order
        start, end = stack.pop()
        if (end - start) - average <= variation:
            points.append(end)
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(-variation, variation)
        mid = min(max(mid, start + 1), end - 1)
        stack.append((mid, end))
        stack.append((start, mid))
    return points


@register
class Slicer(Toxic):
    type_name = "slicer"
    go_type = "SlicerToxic"
    fields = {"average_size": "int", "size_variation": "int", "delay": "int"}
    average_size: int
    size_variation: int
    delay: int

    def mistakes(self) -> list[str]:
        found = super().mistakes()
        if self.average_size < 1:
            found.append(f"average_size {self.average_size} is below 1: slicing byte by byte")
        elif self.size_variation >= self.average_size:
            found.append(f"size_variation {self.size_variation} is not below average_size {self.average_size}")
        return found

    async def pipe(self, stub: Stub) -> None:
        async for chunk in stub.chunks():
            data = memoryview(chunk.data)
            start = 0
            for end in cut_points(len(data), self.average_size, self.size_variation, stub.rng):
                stub.hold(Chunk(data[end:], chunk.ts) if end < len(data) else None)
                stub.send(Chunk(data[start:end], chunk.ts))
                start = end
                if end < len(data) and self.delay > 0:
                    await stub.sleep(self.delay / 1e6)
