"""The lean WebSocket client's parser, fed real bytes produced by the websockets library's own protocol."""

import asyncio
import struct

from websockets.frames import Frame, Opcode
from websockets.server import ServerProtocol

from audioroom import wsclient


class FakeTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data):
        self.written += data

    def close(self):
        self.closed = True

    def is_closing(self):
        return self.closed


def server_frame(opcode, payload, fin=True):
    return Frame(opcode, payload, fin).serialize(mask=False, extensions=[])


async def opened(messages):
    """A protocol past a genuine handshake answered by websockets' ServerProtocol."""
    proto = wsclient.ListenerProtocol("h:1", "/listen/launch", messages.append)
    transport = FakeTransport()
    proto.connection_made(transport)
    server = ServerProtocol()
    server.receive_data(bytes(transport.written))
    request = server.events_received()[0]
    server.send_response(server.accept(request))
    response = b"".join(server.data_to_send())
    transport.written.clear()
    return proto, transport, response


async def test_handshake_messages_split_anywhere_ping_and_close():
    messages = []
    proto, transport, response = await opened(messages)
    payload = bytes(range(200))
    stream = response + server_frame(Opcode.BINARY, payload) + server_frame(Opcode.TEXT, b"hi") \
        + server_frame(Opcode.BINARY, b"ab", fin=False) + server_frame(Opcode.CONT, b"cd") \
        + server_frame(Opcode.PING, b"p") + server_frame(Opcode.CLOSE, struct.pack(">H", 4001) + b"kicked")
    for i in range(0, len(stream), 7):  # TCP may cut anywhere
        proto.data_received(stream[i:i + 7])
    assert proto.opened.done() and proto.opened.exception() is None
    assert messages == [payload, b"hi", b"abcd"]
    assert proto._close == (4001, "kicked") and transport.closed
    # we answered the ping and the close, masked as a client must
    assert transport.written[0] == 0x8A and transport.written[1] & 0x80
    proto.connection_lost(None)
    assert await proto.closed == (4001, "kicked")


async def test_a_connection_lost_without_close_frame_is_1006():
    proto, transport, response = await opened([])
    proto.data_received(response)
    proto.connection_lost(ConnectionResetError("reset"))
    code, _ = await proto.closed
    assert code == wsclient.ABNORMAL


async def test_a_refused_upgrade_fails_the_handshake_with_the_status():
    proto = wsclient.ListenerProtocol("h:1", "/listen/x", lambda m: None)
    proto.connection_made(FakeTransport())
    proto.data_received(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert "HTTP 404" in str(proto.opened.exception())


async def test_a_shed_upgrade_carries_its_status_and_retry_after():
    proto = wsclient.ListenerProtocol("h:1", "/listen/x", lambda m: None)
    proto.connection_made(FakeTransport())
    proto.data_received(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n")
    refused = proto.opened.exception()
    assert isinstance(refused, wsclient.Refused) and (refused.status, refused.retry_after) == (503, 3.0)
    assert wsclient.retry_after_seconds("Fri, 31 Dec 1999 23:59:59 GMT") is None  # a date: no usable hint
    assert wsclient.retry_after_seconds(" 12 ") == 12.0


def test_accept_key_matches_rfc_6455_example():
    assert wsclient.accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


async def test_whole_frames_one_per_read_take_the_fast_path_and_match_the_slow_one():
    messages = []
    proto, transport, response = await opened(messages)
    proto.data_received(response)
    payloads = [b"x" * n for n in (5, 125, 126, 127, 300, 70000)]
    for payload in payloads:
        proto.data_received(server_frame(Opcode.BINARY, payload))
    proto.data_received(server_frame(Opcode.TEXT, b"t"))  # not binary: slow path
    assert messages == payloads + [b"t"]
