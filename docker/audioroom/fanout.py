"""One frame to many listeners, framed once: the edge's fan-out.

``websockets.broadcast`` frames the message again for every connection (a
``Frame`` built and serialized in Python, then the protocol's write queue
drained), which is most of what an edge spends per listener. A server's data
frames are unmasked, so every listener gets the same bytes: this frames the
message once with websockets' own serializer and writes those bytes to each
open connection's transport. The same checks as ``broadcast``: a connection
that is not OPEN (closing, closed) or is in the middle of a fragmented send
is skipped. Ordering with websockets' own writes holds because both write
whole frames from the one event loop.
"""

from __future__ import annotations

from typing import Iterable

from websockets.asyncio.connection import Connection
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN


def framed(message: bytes | str) -> bytes:
    """``message`` as one final, unmasked frame (text for a str, as ``broadcast`` sends it), without
    extensions (the edge negotiates none: compression is off)."""
    opcode, data = (Opcode.TEXT, message.encode()) if isinstance(message, str) else (Opcode.BINARY, bytes(message))
    return Frame(opcode, data).serialize(mask=False, extensions=[])


def fan_out(connections: Iterable[Connection], message: bytes | str) -> int:
    """Write ``message`` to every open connection; how many it was written to."""
    data = framed(message)
    sent = 0
    for conn in connections:
        if conn.protocol.state is OPEN and conn.send_in_progress is None:
            conn.transport.write(data)
            sent += 1
    return sent
