"""The no-toxic fast path (chaos/proxy/relay.py) on real sockets: a live
connection moves to the toxic path the moment a toxic is added, without
losing, reordering or bypassing a byte; bulk flows are spliced and a reset
arriving with the last bytes still closes the client."""

from __future__ import annotations

import hashlib
import re
import socket
import struct
import threading
import time

MiB = 1 << 20
PONG_TRIES = 5  # echo round trips after the toxic is removed; the byte count includes them


def test_a_bulk_flow_is_promoted_mid_stream_without_losing_a_byte(client, name, echo, sockets, http):
    port = client.create(name, "127.0.0.1:0", echo.address).port
    blocks = [hashlib.sha256(bytes([i])).digest() * (MiB // 32) for i in range(12)]
    sent = b"".join(blocks)
    received = bytearray()
    with sockets.connect(port, timeout=30) as s:
        sender = threading.Thread(target=lambda: [s.sendall(b) for b in blocks])
        sender.start()
        while len(received) < 3 * MiB:  # bulk: the relay is splicing by now
            received += s.recv(1 << 16)
        client.add_toxic(name, "latency", stream="downstream", attributes={"latency": 40}, name="late")
        while len(received) < len(sent):
            chunk = s.recv(1 << 16)
            assert chunk, f"closed after {len(received)} bytes"
            received += chunk
        sender.join()
        assert bytes(received) == sent
        # the promoted connection now carries the toxic
        t0 = time.perf_counter()
        s.sendall(b"ping")
        assert sockets.recv_exactly(s, 4) == b"ping"
        assert time.perf_counter() - t0 >= 0.038
        # and loses it again when it is removed
        client.remove_toxic(name, "late")
        assert sockets.fastest_echo(s, b"pong", tries=PONG_TRIES) < 0.030  # every try would take >= 0.04 s with the toxic
        s.shutdown(socket.SHUT_WR)
        assert sockets.recv_all(s) == b""
    metrics = http("GET", "/metrics").text
    got = re.search(rf'toxiproxy_proxy_sent_bytes_total{{[^}}]*direction="downstream"[^}}]*proxy="{name}"[^}}]*}} (\S+)',
                    metrics)
    assert got and float(got.group(1)) == len(sent) + len(b"ping") + PONG_TRIES * len(b"pong")


def test_a_half_closed_connection_is_promoted_and_still_answers(client, name, upstream, sockets):
    # the client ends its side on the fast path; the answer comes after a toxic was added
    seen_eof = threading.Event()
    toxic_added = threading.Event()
    answered_at: list[float] = []

    def answer_later(conn: socket.socket) -> None:
        data = b""
        while chunk := conn.recv(1000):
            data += chunk
        seen_eof.set()
        toxic_added.wait(10)
        answered_at.append(time.perf_counter())
        conn.sendall(data.upper())

    port = client.create(name, "127.0.0.1:0", upstream(answer_later).address).port
    with sockets.connect(port) as s:
        s.sendall(b"abc")
        s.shutdown(socket.SHUT_WR)
        assert seen_eof.wait(5)
        client.add_toxic(name, "latency", stream="downstream", attributes={"latency": 100})
        toxic_added.set()
        assert sockets.recv_all(s) == b"ABC"
        assert time.perf_counter() - answered_at[0] >= 0.098  # the answer went through the toxic


def test_a_reset_that_comes_with_the_last_bytes_closes_the_client(client, name, upstream, sockets):
    # the upstream writes and resets at once: epoll reports data and an error together
    def write_and_reset(conn: socket.socket) -> None:
        conn.recv(1)
        conn.sendall(b"last words" * 1000)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    port = client.create(name, "127.0.0.1:0", upstream(write_and_reset).address).port
    for _ in range(20):
        with sockets.connect(port, timeout=5) as s:
            s.sendall(b"?")
            try:
                data = sockets.recv_all(s)  # a timeout here would mean a hung relay
            except ConnectionResetError:
                data = b""
            assert len(data) <= 10_000


def test_connections_accepted_with_a_toxic_take_the_toxic_path_from_the_start(client, name, echo, sockets):
    port = client.create(name, "127.0.0.1:0", echo.address).port
    client.add_toxic(name, "latency", stream="upstream", attributes={"latency": 50})
    with sockets.connect(port) as s:
        t0 = time.perf_counter()
        s.sendall(b"x")
        assert sockets.recv_exactly(s, 1) == b"x"
        assert time.perf_counter() - t0 >= 0.048


def test_parallel_flows_promoted_and_demoted_while_running_stay_exact(client, name, echo, sockets):
    port = client.create(name, "127.0.0.1:0", echo.address).port
    errors: list[str] = []
    started = threading.Barrier(9)

    def one(i: int) -> None:
        payload = hashlib.sha256(str(i).encode()).digest() * 60_000  # 1.9 MB, both ways at once
        with sockets.connect(port, timeout=30) as s:
            started.wait()
            t = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
            t.start()
            back = sockets.recv_all(s)
            t.join()
        if back != payload:
            errors.append(f"stream {i}: {len(back)} of {len(payload)} bytes back, first difference at "
                          f"{next((k for k, (a, b) in enumerate(zip(back, payload)) if a != b), min(len(back), len(payload)))}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.02)
    client.add_toxic(name, "slicer", stream="upstream", attributes={"average_size": 3000, "delay": 10}, name="s")
    time.sleep(0.05)
    client.remove_toxic(name, "s")
    for t in threads:
        t.join()
    assert not errors


def test_an_upstream_that_refuses_gets_the_client_closed_on_both_paths(client, name, sockets):
    with socket.create_server(("127.0.0.1", 0)) as gone:
        dead = gone.getsockname()[1]  # closed again below: nothing listens there
    port = client.create(name, "127.0.0.1:0", f"127.0.0.1:{dead}").port
    for toxic in (False, True):
        if toxic:
            client.add_toxic(name, "latency", attributes={"latency": 10})
        with sockets.connect(port, timeout=5) as s:  # accepted, as Toxiproxy does, then closed
            s.sendall(b"anyone?")
            try:
                assert s.recv(10) == b""
            except ConnectionResetError:
                pass
