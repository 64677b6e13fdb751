"""The relay's poller delivers every event, a reset included (uvloop's
add_reader drops a socket whose poll reports an error, silently)."""

from __future__ import annotations

import asyncio
import socket
import struct

from chaos.proxy.poller import Poller


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname())
        theirs, _ = listener.accept()
    return ours, theirs


async def test_a_reset_reaches_the_read_callback():
    loop = asyncio.get_running_loop()
    poller = Poller(loop)
    ours, theirs = tcp_pair()
    try:
        ours.setblocking(False)
        woke = asyncio.Event()
        errors: list[BaseException] = []

        def readable() -> None:
            try:
                ours.recv(100)
            except OSError as err:
                errors.append(err)
            woke.set()

        theirs.sendall(b"bye")
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        theirs.close()  # data and a reset at once
        poller.set_reader(ours.fileno(), readable)
        await asyncio.wait_for(woke.wait(), 2)
        while not errors:  # the data first, then the reset
            woke.clear()
            await asyncio.wait_for(woke.wait(), 2)
        assert isinstance(errors[0], ConnectionResetError)
    finally:
        poller.forget(ours.fileno())
        ours.close()
        poller.close()


async def test_reader_and_writer_share_one_registration():
    loop = asyncio.get_running_loop()
    poller = Poller(loop)
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        calls: list[str] = []
        done = asyncio.Event()

        def on_write() -> None:
            calls.append("w")
            poller.set_writer(a.fileno(), None)  # the reader stays
            b.sendall(b"x")

        def on_read() -> None:
            calls.append("r")
            a.recv(10)
            done.set()

        poller.set_reader(a.fileno(), on_read)
        poller.set_writer(a.fileno(), on_write)
        await asyncio.wait_for(done.wait(), 2)
        assert calls == ["w", "r"]
        poller.set_reader(a.fileno(), None)
        assert a.fileno() in poller._watched and poller._watched[a.fileno()][2] == 0
        poller.forget(a.fileno())
        assert a.fileno() not in poller._watched
    finally:
        a.close()
        b.close()
        poller.close()
