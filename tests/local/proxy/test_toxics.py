"""Each toxic measured through real TCP connections (timing asserted with margins).

Tolerances: a delay is never shorter than asked (minus 2 ms for clock
granularity of other servers) and at most MARGIN longer; bandwidth never faster
than its rate beyond one 100 ms slice, and at most MARGIN late over the whole transfer.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

MARGIN = 0.5  # s: generous upper bound, the machine is shared


def proxy_to(client, name, up):
    return client.create(name, "127.0.0.1:0", up.address).port


def source(payload: bytes, then_close: bool = True):
    def handler(conn: socket.socket) -> None:
        conn.sendall(payload)
        if then_close:
            conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass

    return handler


def rtt(sockets, port: int, payload: bytes = b"ping") -> float:
    with sockets.connect(port) as s:
        t0 = time.perf_counter()
        s.sendall(payload)
        assert sockets.recv_exactly(s, len(payload)) == payload
        return time.perf_counter() - t0


def test_latency_downstream_and_upstream_add_up(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    base = rtt(sockets, port)
    client.add_toxic(name, "latency", attributes={"latency": 100})
    observed = rtt(sockets, port)
    assert 0.098 <= observed <= 0.100 + base + MARGIN
    client.add_toxic(name, "latency", stream="upstream", attributes={"latency": 50})
    observed = rtt(sockets, port)
    assert 0.148 <= observed <= 0.150 + base + MARGIN


def test_stacked_latencies_in_one_direction_add(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    client.add_toxic(name, "latency", name="a", attributes={"latency": 40})
    client.add_toxic(name, "latency", name="b", attributes={"latency": 40})
    assert 0.078 <= rtt(sockets, port) <= 0.080 + MARGIN


def test_latency_is_pipelined(client, name, upstream, sockets):
    # 40 separate chunks 10 ms apart: pipelined they all arrive ~100 ms after
    # being sent (~0.5 s in all); one latency after another would take 4 s.
    # The bound between (2.5 s) leaves a loaded machine 2 s: a CI run beside a
    # CPU hog took 1.38 s for 20 chunks, against a bound of 1.2 s then.
    chunks = 40

    def trickle(conn: socket.socket) -> None:
        for i in range(chunks):
            conn.sendall(bytes([i]) * 100)
            time.sleep(0.01)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(100):
            pass

    port = proxy_to(client, name, upstream(trickle))
    client.add_toxic(name, "latency", attributes={"latency": 100})
    with sockets.connect(port, timeout=10) as s:
        t0 = time.perf_counter()
        data = sockets.recv_all(s)
        elapsed = time.perf_counter() - t0
    assert data == b"".join(bytes([i]) * 100 for i in range(chunks))
    assert 0.098 + (chunks - 1) * 0.01 <= elapsed <= 2.5 < chunks * 0.1


def test_jitter_stays_in_range(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    client.add_toxic(name, "latency", attributes={"latency": 60, "jitter": 20})
    samples = sorted(rtt(sockets, port) for _ in range(8))
    # never below latency - jitter; a loaded machine only adds, and to some round trips (one beside a CPU
    # hog took over 0.58 s), so the upper bound holds for the faster half
    assert samples[0] >= 0.038
    assert samples[len(samples) // 2 - 1] <= 0.080 + MARGIN, samples
    assert samples[-1] - samples[0] > 0.002  # jitter is applied


def test_toxicity_zero_never_applies(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    client.add_toxic(name, "latency", toxicity=0.0, attributes={"latency": 1000})
    assert rtt(sockets, port) < 0.5


def test_bandwidth_is_never_faster_than_its_rate_and_keeps_its_schedule(client, name, upstream, sockets):
    size = 400_000
    up = upstream(source(b"b" * size))
    port = proxy_to(client, name, up)
    client.add_toxic(name, "bandwidth", attributes={"rate": 400})  # KB/s: 1 s for 400 KB
    total = 0
    # Timed from before the connection: the proxy's schedule starts after it, so a reader that
    # wakes late (a busy machine) sees the transfer slower, never faster. Timed from the first
    # chunk read, a late first read made the rest arrive in a burst: 445 KB/s beside a CPU hog.
    started = time.perf_counter()
    with sockets.connect(port, timeout=10) as s:
        while chunk := s.recv(65536):
            total += len(chunk)
        took = time.perf_counter() - started
    assert total == size
    rate = 400_000  # bytes/s
    # Idle time counts as credit for one 100 ms slice (as Toxiproxy's sleep per chunk allows a burst).
    assert (size - rate * 0.1) / rate * 0.98 <= took <= size / rate + MARGIN, took


def test_slow_close_delays_the_close_not_the_data(client, name, upstream, sockets):
    up = upstream(source(b"hello"))
    port = proxy_to(client, name, up)
    client.add_toxic(name, "slow_close", attributes={"delay": 300})
    with sockets.connect(port) as s:
        t0 = time.perf_counter()
        assert sockets.recv_exactly(s, 5) == b"hello"
        got_data = time.perf_counter() - t0
        assert s.recv(10) == b""
        closed = time.perf_counter() - t0
    assert got_data < 0.2
    assert 0.298 <= closed <= 0.3 + MARGIN


def test_timeout_drops_data_and_closes_after_silence(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    client.add_toxic(name, "timeout", stream="upstream", attributes={"timeout": 300})
    with sockets.connect(port) as s:
        t0 = time.perf_counter()
        s.sendall(b"lost")
        try:
            data = s.recv(10)
        except ConnectionResetError:
            data = b""
        elapsed = time.perf_counter() - t0
    assert data == b""
    assert 0.298 <= elapsed <= 0.3 + MARGIN


def test_timeout_zero_holds_until_removed(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    toxic = client.add_toxic(name, "timeout", attributes={"timeout": 0})
    with sockets.connect(port) as s:
        s.settimeout(0.4)
        s.sendall(b"x")
        with pytest.raises(socket.timeout):
            s.recv(10)  # nothing comes back, nothing closes
        s.settimeout(5)
        client.remove_toxic(name, toxic)
        try:
            assert s.recv(10) == b""  # removing a timeout closes what it held
        except ConnectionResetError:
            pass


def test_reset_peer_resets_after_timeout(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    client.add_toxic(name, "reset_peer", stream="upstream", attributes={"timeout": 150})
    with sockets.connect(port) as s:
        t0 = time.perf_counter()
        s.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            s.recv(10)
        elapsed = time.perf_counter() - t0
    assert 0.148 <= elapsed <= 0.15 + MARGIN


def test_slicer_delivers_the_same_bytes_in_pieces(client, name, upstream, sockets):
    payload = bytes(range(256)) * 4
    up = upstream(source(payload))
    port = proxy_to(client, name, up)
    client.add_toxic(name, "slicer", attributes={"average_size": 16, "size_variation": 8, "delay": 3000})
    reads = []
    with sockets.connect(port) as s:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            reads.append(chunk)
    assert b"".join(reads) == payload
    assert len(reads) >= 10  # ~64 slices 3 ms apart: many separate reads
    assert max(len(r) for r in reads) < len(payload)


def test_limit_data_downstream_passes_exactly_n_bytes_then_closes(client, name, upstream, sockets):
    up = upstream(source(b"d" * 5000, then_close=False))
    port = proxy_to(client, name, up)
    client.add_toxic(name, "limit_data", attributes={"bytes": 1000})
    with sockets.connect(port) as s:
        assert sockets.recv_all(s) == b"d" * 1000  # then a clean close (no reset)


def test_limit_data_upstream_passes_exactly_n_bytes_then_closes(client, name, upstream, sockets):
    received = bytearray()
    done = threading.Event()

    def record(conn: socket.socket) -> None:
        while chunk := conn.recv(65536):
            received.extend(chunk)
        done.set()

    port = proxy_to(client, name, upstream(record))
    client.add_toxic(name, "limit_data", stream="upstream", attributes={"bytes": 1000})
    with sockets.connect(port) as s:
        s.sendall(b"u" * 5000)
        assert sockets.recv_all(s) == b""
    assert done.wait(5)
    assert bytes(received) == b"u" * 1000


def test_down_refuses_and_cuts_live_connections(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    live = sockets.connect(port)
    live.sendall(b"a")
    assert sockets.recv_exactly(live, 1) == b"a"
    client.set_enabled(name, False)
    try:
        assert live.recv(10) == b""
    except ConnectionResetError:
        pass
    live.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    client.set_enabled(name, True)
    assert rtt(sockets, port) < 1.0


def test_upstream_refusing_closes_the_client(client, name, sockets):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    dead_port = free.getsockname()[1]
    free.close()
    port = client.create(name, "127.0.0.1:0", f"127.0.0.1:{dead_port}").port
    with sockets.connect(port) as s:
        try:
            assert s.recv(10) == b""  # accepted, then closed (Toxiproxy's behaviour)
        except ConnectionResetError:
            pass


def test_toxic_applies_to_live_connections(client, name, echo, sockets):
    port = proxy_to(client, name, echo)
    with sockets.connect(port) as s:
        s.sendall(b"1")
        assert sockets.recv_exactly(s, 1) == b"1"
        client.add_toxic(name, "latency", name="live", attributes={"latency": 120})
        t0 = time.perf_counter()
        s.sendall(b"2")
        assert sockets.recv_exactly(s, 1) == b"2"
        assert time.perf_counter() - t0 >= 0.118
        client.update_toxic(name, "live", attributes={"latency": 0})
        assert sockets.fastest_echo(s, b"3") < 0.1  # every try would take >= 0.12 s with the old latency
        client.remove_toxic(name, "live")
        s.sendall(b"4")
        assert sockets.recv_exactly(s, 1) == b"4"


def test_half_close_is_passed_on(client, name, upstream, sockets, ours_only):
    # the client shuts its write side; the upstream answers after seeing EOF
    def reply_after_eof(conn: socket.socket) -> None:
        data = b""
        while chunk := conn.recv(1000):
            data += chunk
        conn.sendall(data.upper())

    up = upstream(reply_after_eof)
    port = proxy_to(client, name, up)
    with sockets.connect(port) as s:
        s.sendall(b"abc")
        s.shutdown(socket.SHUT_WR)
        assert sockets.recv_all(s) == b"ABC"


def test_bandwidth_rate_zero_stalls_until_updated(client, name, echo, sockets):
    """As Toxiproxy: rate 0 holds the stream; what it held is passed on when the toxic changes."""
    port = client.create(name, "127.0.0.1:0", echo.address).port
    client.add_toxic(name, "bandwidth", attributes={"rate": 0})
    with sockets.connect(port) as s:
        s.sendall(b"held")
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(10)
        client.update_toxic(name, "bandwidth_downstream", attributes={"rate": 100})
        s.settimeout(5)
        assert sockets.recv_exactly(s, 4) == b"held"


def test_port_conflict_names_the_resolved_address(http, client, name):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        resp = http("POST", "/proxies", json={"name": name, "upstream": "127.0.0.1:9", "listen": f"localhost:{port}"})
    assert resp.status_code == 500
    assert resp.json()["error"] == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
