"""timeout: drops all data; closes the connection after ``timeout`` ms without
data arriving (every chunk restarts the timer); 0 never closes.

Removing the toxic closes the connections it held (as Toxiproxy's Cleanup).
"""

from __future__ import annotations

from chaos.proxy.link import TIMED_OUT, Stub
from chaos.proxy.toxics.base import Toxic


class Timeout(Toxic):
    type_name = "timeout"
    attributes = {"timeout": 0}

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv(timeout=self.timeout / 1000.0 if self.timeout > 0 else None)
            if chunk is TIMED_OUT:
                stub.close("close")
                return
            if chunk is None:
                stub.close()
                return
            stub.drop(chunk)

    def cleanup(self, stub: Stub) -> bool:
        stub.close("close")
        return True
