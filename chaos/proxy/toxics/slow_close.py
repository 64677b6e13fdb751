"""slow_close: holds the end of the stream (EOF or close) for ``delay`` ms."""

from __future__ import annotations

from chaos.proxy.link import Stub
from chaos.proxy.toxics.base import Toxic


class SlowClose(Toxic):
    type_name = "slow_close"
    attributes = {"delay": 0}

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                await stub.sleep(self.delay / 1000.0)
                stub.close()
                return
            stub.send(chunk)
