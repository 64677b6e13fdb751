"""noop: passes everything through."""

from __future__ import annotations

from chaos.proxy.toxics.base import Stub, Toxic, passthrough, register


@register
class Noop(Toxic):
    type_name = "noop"
    go_type = "NoopToxic"

    async def pipe(self, stub: Stub) -> None:
        await passthrough(stub)
