"""noop: passes everything through; also what a toxic runs when toxicity misses."""

from __future__ import annotations

from chaos.proxy.link import Stub
from chaos.proxy.toxics.base import Toxic


class Noop(Toxic):
    type_name = "noop"

    async def pipe(self, stub: Stub) -> None:
        async for chunk in stub.chunks():
            stub.send(chunk)


NOOP = Noop()
