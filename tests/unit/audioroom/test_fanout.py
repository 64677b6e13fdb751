"""The edge's fan-out: one frame built once, its bytes written to every open listener, read back by real clients."""

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.uri import parse_uri

from audioroom import wsclient
from audioroom.fanout import fan_out, framed


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_framed_is_what_websockets_parses_back(size):
    payload = bytes(i % 251 for i in range(size))
    client = ClientProtocol(parse_uri("ws://h/"), max_size=None, state=OPEN)
    client.receive_data(framed(payload) + framed("hé"))
    frames = client.events_received()
    assert [(f.opcode, f.data, f.fin) for f in frames] == [(Opcode.BINARY, payload, True), (Opcode.TEXT, "hé".encode(), True)]
    # and the bytes are websockets' own serialization, unmasked as a server's frames are
    assert framed(payload) == Frame(Opcode.BINARY, payload).serialize(mask=False, extensions=[])


async def test_every_open_listener_gets_the_frames_in_order_closed_ones_are_skipped():
    conns = set()
    ready = asyncio.Event()

    async def handler(conn):
        conns.add(conn)
        if len(conns) == 4:
            ready.set()
        await conn.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        lean_got: list[bytes] = []
        lean = await wsclient.connect("127.0.0.1", port, "/", lean_got.append, 5)
        library = [await connect(f"ws://127.0.0.1:{port}/", compression=None) for _ in range(3)]
        await asyncio.wait_for(ready.wait(), 5)
        leaving = library.pop()
        await leaving.close()
        for _ in range(100):  # the server side sees the close
            if sum(c.protocol.state is OPEN for c in conns) == 3:
                break
            await asyncio.sleep(0.01)

        big = bytes(range(256)) * 300  # over 65,535 bytes: the 8-byte length form
        sent = [fan_out(conns, b"one"), fan_out(conns, big)]
        for conn in conns:  # websockets' own send after ours on the same connections: order holds
            if conn.protocol.state is OPEN:
                await conn.send(b"three")
        assert sent == [3, 3]
        for client in library:
            assert [await asyncio.wait_for(client.recv(), 5) for _ in range(3)] == [b"one", big, b"three"]
            await client.close()
        for _ in range(100):
            if len(lean_got) == 3:
                break
            await asyncio.sleep(0.01)
        assert lean_got == [b"one", big, b"three"]
        lean.close()


async def test_a_connection_closing_gets_no_more_frames():
    conns = []
    got_close = asyncio.Event()

    async def handler(conn):
        conns.append(conn)
        await conn.close(4004, "moved")  # returns once the client answered: no data frame may follow
        got_close.set()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as client:
            await asyncio.wait_for(got_close.wait(), 5)
            assert fan_out(conns, b"late") == 0
            with pytest.raises(Exception) as closed:
                await asyncio.wait_for(client.recv(), 5)
            assert getattr(closed.value, "rcvd").code == 4004
