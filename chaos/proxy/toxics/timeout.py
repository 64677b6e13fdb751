"""timeout: drops all data; closes the connection after ``timeout`` ms without
data arriving (every chunk restarts the timer); 0 or less never closes.

Removing the toxic closes the connections it held (as Toxiproxy's Cleanup).
"""

from __future__ import annotations

from chaos.proxy.toxics.base import TIMED_OUT, Chunk, End, Stub, Toxic, register


@register
class Timeout(Toxic):
    type_name = "timeout"
    go_type = "TimeoutToxic"
    fields = {"timeout": "int64"}
    timeout: int

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv(timeout=self.timeout / 1000.0 if self.timeout > 0 else None)
            if chunk is TIMED_OUT:
                stub.close(End.CLOSE)
                return
            if not isinstance(chunk, Chunk):
                stub.close()
                return
            stub.drop(chunk)

    def cleanup(self, stub: Stub) -> bool:
        stub.close(End.CLOSE)
        return True
