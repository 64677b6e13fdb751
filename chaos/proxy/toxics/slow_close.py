"""slow_close: holds the end of the stream (EOF or close) for ``delay`` ms."""

from __future__ import annotations

from chaos.proxy.toxics.base import Chunk, Stub, Toxic, register


@register
class SlowClose(Toxic):
    type_name = "slow_close"
    go_type = "SlowCloseToxic"
    fields = {"delay": "int64"}
    delay: int

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if not isinstance(chunk, Chunk):  # the end, held (passed on if the toxic goes meanwhile)
                await stub.sleep(self.delay / 1000.0)
                stub.close()
                return
            stub.send(chunk)
