"""slicer: cuts chunks into pieces of about ``average_size`` ± ``size_variation``
bytes with ``delay`` µs between pieces (split in halves recursively, so
there is no bias to small or large pieces at either end)."""

from __future__ import annotations

import random

from chaos.proxy.link import Chunk, Stub
from chaos.proxy.toxics.base import InvalidAttributes, Toxic


def cut_points(size: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Offsets 0 < p1 < ... < size at which to cut ``size`` bytes."""
    points: list[int] = []

    def split(start: int, end: int) -> None:
        if (end - start) - average <= variation:
            points.append(end)
            return
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(-variation, variation)
        mid = min(max(mid, start + 1), end - 1)
        split(start, mid)
        split(mid, end)

    if size > 0:
        split(0, size)
    return points


class Slicer(Toxic):
    type_name = "slicer"
    attributes = {"average_size": 0, "size_variation": 0, "delay": 0}

    def validate(self) -> None:
        if self.average_size < 1:
            raise InvalidAttributes("attribute 'average_size' of slicer must be at least 1")
        if self.size_variation >= self.average_size:
            raise InvalidAttributes("attribute 'size_variation' of slicer must be less than average_size")

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
