"""limit_data: passes ``bytes`` bytes per connection and direction, then closes
(on the first chunk when ``bytes`` is 0 or less, as in Toxiproxy)."""

from __future__ import annotations

from typing import Any

from chaos.proxy.toxics.base import Chunk, End, Stub, Toxic, register


@register
class LimitData(Toxic):
    type_name = "limit_data"
    go_type = "LimitDataToxic"
    fields = {"bytes": "int64"}
    bytes: int

    def new_state(self) -> Any:
        return {"sent": 0}

    async def pipe(self, stub: Stub) -> None:
        state = stub.state
        async for chunk in stub.chunks():
            room = max(0, self.bytes - state["sent"])
            if len(chunk.data) > room:
                stub.drop(chunk)
                chunk = Chunk(chunk.data[:room], chunk.ts)
                stub.account(len(chunk.data))  # the kept part is still in the pipe
            if chunk.data:
                state["sent"] += len(chunk.data)
                stub.send(chunk)
            if state["sent"] >= self.bytes:
                stub.close(End.CLOSE)
                return
