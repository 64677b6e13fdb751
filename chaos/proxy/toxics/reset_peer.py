"""reset_peer: on the first chunk, waits ``timeout`` ms, then resets the
connection (TCP RST: SO_LINGER 0). The first chunk is
dropped; later data waits (and is flushed if the toxic is removed).
Idle connections are not reset, as in Toxiproxy."""

from __future__ import annotations

from chaos.proxy.link import Stub
from chaos.proxy.toxics.base import Toxic


class ResetPeer(Toxic):
    type_name = "reset_peer"
    attributes = {"timeout": 0}

    async def pipe(self, stub: Stub) -> None:
        chunk = await stub.recv()
        if chunk is not None:
            stub.drop(chunk)  # later data waits in the queue (flushed if the toxic is removed)
        await stub.sleep(self.timeout / 1000.0)
        stub.close("reset")
