"""Bulk data through the no-toxic fast path arrives intact, also under backpressure."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time


def test_bulk_echo_is_byte_exact_with_a_slow_reader(client, name, echo, sockets):
    port = client.create(name, "127.0.0.1:0", echo.address).port
    blocks = [os.urandom(1 << 20) for _ in range(4)]
    sent = hashlib.sha256()
    got = hashlib.sha256()
    total = 24 << 20
    received = 0
    with sockets.connect(port, timeout=30) as s:
        def send() -> None:
            for i in range(total // (1 << 20)):
                block = blocks[i % 4][i:] + blocks[i % 4][:i]  # every MiB differs
                sent.update(block)
                s.sendall(block)
            s.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got.update(chunk)
            received += len(chunk)
            if received < (4 << 20):
                time.sleep(0.001)  # lag at first: buffers fill, reading pauses
        sender.join()
    assert received == total
    assert got.hexdigest() == sent.hexdigest()


def test_many_parallel_streams_are_byte_exact(client, name, echo, sockets):
    port = client.create(name, "127.0.0.1:0", echo.address).port
    errors: list[str] = []

    def one(i: int) -> None:
        payload = hashlib.sha256(str(i).encode()).digest() * 40_000  # 1.28 MB
        with sockets.connect(port, timeout=30) as s:
            t = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
            t.start()
            back = sockets.recv_all(s)
            t.join()
        if back != payload:
            errors.append(f"stream {i}: {len(back)} bytes back")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
