"""reset_peer: on the first chunk, waits ``timeout`` ms, then resets the
connection (TCP RST: SO_LINGER 0). The first chunk is dropped; later data
waits (and is flushed if the toxic is removed). Idle connections are not
reset, as in Toxiproxy."""

from __future__ import annotations

from chaos.proxy.toxics.base import Chunk, End, Stub, Toxic, register


@register
class ResetPeer(Toxic):
    type_name = "reset_peer"
    go_type = "ResetToxic"
    fields = {"timeout": "int64"}
    timeout: int

    async def pipe(self, stub: Stub) -> None:
        chunk = await stub.recv()
        if isinstance(chunk, Chunk):
            stub.drop(chunk)  # later data waits in the queue (flushed if the toxic is removed)
        await stub.sleep(self.timeout / 1000.0)
        stub.close(End.RESET)
