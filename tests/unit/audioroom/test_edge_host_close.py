"""How the edge reports a host connection that ends by a close it did not expect from the host:
moved out (4004, sent by the edge) or lost. One log line each; real processes: tests/local/audioroom/test_edge_logs.py."""

import asyncio
import logging
import time

from websockets.exceptions import ConnectionClosedError
from websockets.frames import Close

from audioroom import config
from audioroom.edge import MOVED, Edge

ENV = {"RQ_SERVICE": "edge", "RQ_INSTANCE": "edge-1", "RQ_ROUTES": "{}", "HEARTBEAT_INTERVAL": "100ms",
       "HEARTBEAT_TIMEOUT": "1s"}


class ClosingHost:
    """A host connection whose frame stream ends the way websockets ends it after a non-1000 close."""

    def __init__(self, sent: Close | None, rcvd: Close | None) -> None:
        self.error = ConnectionClosedError(rcvd, sent, None if sent is None or rcvd is None else False)

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        raise self.error


def run_host(conn: ClosingHost) -> Edge:
    edge = Edge(config.load(ENV), state=None)  # type: ignore[arg-type] - host() never reaches state
    edge.last_beat = time.monotonic()
    room = edge.live_room("launch", 2)
    asyncio.run(edge.host(conn, room))  # type: ignore[arg-type]
    assert room.host is None  # the slot is free for the next host connection
    return edge


def test_moved_out_is_one_info_line(caplog) -> None:
    caplog.set_level(logging.INFO, logger="audioroom.edge")
    run_host(ClosingHost(sent=Close(MOVED, "moved"), rcvd=Close(MOVED, "moved")))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "host of room launch (generation 2) closed: 4004 moved")]
    assert not any(r.exc_info for r in caplog.records)


def test_a_lost_host_is_one_warning_line(caplog) -> None:
    caplog.set_level(logging.INFO, logger="audioroom.edge")
    run_host(ClosingHost(sent=None, rcvd=None))  # no close frame: the host's process or network went away
    [record] = caplog.records
    assert record.levelno == logging.WARNING and not record.exc_info
    assert record.getMessage() == "host of room launch (generation 2) lost: no close frame received or sent"
