"""Property: whatever byte-preserving toxics are added, updated and removed
while data flows (both directions), the bytes that arrive are exactly the
bytes sent, in order, however the flow ends: the client's EOF, the
upstream's reset after its last byte, or the client's abort after its last
byte. With no toxic at connect time the connection starts on the fast path
(relay.py) and is promoted by the first toxic added."""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import threading
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

STREAMS = st.sampled_from(["upstream", "downstream"])

TOXICS = st.one_of(
    st.builds(lambda lat, frac: ("latency", {"latency": lat, "jitter": int(lat * frac)}),
              st.integers(5, 30), st.floats(0, 1)),
    st.builds(lambda rate: ("bandwidth", {"rate": rate}), st.integers(300, 20000)),
    st.builds(lambda avg, frac, delay: ("slicer", {"average_size": avg, "size_variation": int((avg - 1) * frac),
                                                   "delay": delay}),
              st.integers(8, 512), st.floats(0, 1), st.integers(0, 2000)),
    st.builds(lambda d: ("slow_close", {"delay": d}), st.integers(0, 10)),
    st.builds(lambda extra: ("limit_data", {"bytes": 1_000_000 + extra}), st.integers(0, 10)),
    st.just(("noop", {})),
)

UPDATES = {  # a new value for a live toxic, from a float in [0, 1]
    "latency": lambda f: {"latency": 5 + int(25 * f)},
    "bandwidth": lambda f: {"rate": 300 + int(20000 * f)},
    "slicer": lambda f: {"delay": int(2000 * f)},
    "slow_close": lambda f: {"delay": int(10 * f)},
    "limit_data": lambda f: {"bytes": 1_000_000 + int(10 * f)},
    "noop": lambda f: {},
}

ENDINGS = st.sampled_from(["eof", "upstream_reset", "client_abort"])
LINGER_ZERO = struct.pack("ii", 1, 0)


def wait_sent(sock: socket.socket, seconds: float = 20) -> None:
    """Until the peer's kernel has every byte this socket sent (so an abort drops none of them)."""
    deadline = time.monotonic() + seconds
    while struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0\0\0\0"))[0] and time.monotonic() < deadline:
        time.sleep(0.002)


class EchoRecorder:
    """Echoes and records what it receives; at the client's EOF it ends as told."""

    def __init__(self) -> None:
        self.ending = "eof"
        self.expect = 0  # with "upstream_reset": reset as soon as this many bytes were echoed
        self.received = bytearray()
        self.done = threading.Event()

    def __call__(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            while True:
                try:
                    data = conn.recv(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    break
                self.received += data
                try:
                    conn.sendall(data)
                except OSError:
                    pass  # the client aborted: its echo has no one to reach
                if self.ending == "upstream_reset" and len(self.received) >= self.expect:
                    break  # reset right away: the proxy's toxics still hold the echo's tail
            if self.ending == "upstream_reset":
                wait_sent(conn)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
            else:
                try:
                    conn.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        finally:
            self.done.set()


ADD = st.tuples(st.just("add"), TOXICS, STREAMS, st.sampled_from([1.0, 0.7, 0.0]))
STEP = st.tuples(
    st.integers(0, 6),  # ms of flowing data before the change
    st.one_of(
        ADD,
        st.tuples(st.just("remove"), st.integers(0, 20)),
        st.tuples(st.just("update"), st.integers(0, 20), st.floats(0, 1)),
    ),
)


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=st.binary(min_size=1, max_size=40_000), piece=st.integers(64, 4096),
       first=st.lists(ADD, min_size=0, max_size=3), steps=st.lists(STEP, min_size=1, max_size=10), ending=ENDINGS)
@example(payload=b"x" * 30_000, piece=4096, first=[("add", ("latency", {"latency": 30, "jitter": 0}), "downstream", 1.0)],
         steps=[(0, ("update", 0, 0.0))], ending="upstream_reset")
@example(payload=b"y" * 30_000, piece=4096, first=[("add", ("latency", {"latency": 30, "jitter": 0}), "upstream", 1.0)],
         steps=[(0, ("update", 0, 0.0))], ending="client_abort")
@example(payload=b"z" * 30_000, piece=512, first=[], steps=[(2, ("add", ("slicer", {"average_size": 64, "size_variation": 10,
         "delay": 500}), "downstream", 1.0))], ending="upstream_reset")
def test_bytes_arrive_exactly_in_order(client, name, upstream, sockets, payload, piece, first, steps, ending):
    recorder = EchoRecorder()
    recorder.ending = ending
    recorder.expect = len(payload)
    up = upstream(recorder)
    if name in client.proxies():
        client.delete(name)
    proxy = client.create(name, "127.0.0.1:0", up.address)
    received = bytearray()
    live: list[tuple[str, str]] = []  # (name, type)

    def apply(i: int, op: tuple) -> None:
        if op[0] == "add":
            (type_, attributes), stream, toxicity = op[1], op[2], op[3]
            live.append((client.add_toxic(name, type_, stream=stream, toxicity=toxicity,
                                          attributes=attributes, name=f"x{i}"), type_))
        elif op[0] == "remove" and live:
            client.remove_toxic(name, live.pop(op[1] % len(live))[0])
        elif op[0] == "update" and live:
            toxic, type_ = live[op[1] % len(live)]
            client.update_toxic(name, toxic, attributes=UPDATES[type_](op[2]))

    for i, op in enumerate(first):
        apply(i, op)
    s = sockets.connect(proxy.port, timeout=20)

    def read() -> None:
        try:
            while chunk := s.recv(65536):
                received.extend(chunk)
        except OSError:
            pass

    def send() -> None:  # the data keeps flowing while toxics change
        for at in range(0, len(payload), piece):
            s.sendall(payload[at:at + piece])
            time.sleep(0.0005)

    reader = threading.Thread(target=read)
    sender = threading.Thread(target=send)
    if ending != "client_abort":
        reader.start()
    sender.start()
    for i, (pause_ms, op) in enumerate(steps, start=len(first)):
        time.sleep(pause_ms / 1000)
        apply(i, op)
    sender.join(20)
    if ending == "client_abort":
        wait_sent(s)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
        s.close()  # abort: every byte sent is in the proxy, none may be lost on the way up
        assert recorder.done.wait(30), "the upstream never saw the end"
        assert bytes(recorder.received) == payload
        return
    s.shutdown(socket.SHUT_WR)  # the upstream answers EOF with EOF (or a reset) once everything is back
    reader.join(30)
    assert not reader.is_alive()
    s.close()
    assert bytes(received) == payload
    assert bytes(recorder.received) == payload
