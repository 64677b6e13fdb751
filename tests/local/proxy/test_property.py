"""Property: whatever byte-preserving toxics are added, updated and removed
while data flows (both directions), the bytes that arrive are exactly the
bytes sent, in order. With no toxic at connect time the connection starts on
the fast path (relay.py) and is promoted by the first toxic added."""

from __future__ import annotations

import socket
import threading
import time

from hypothesis import HealthCheck, given, settings
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

ADD = st.tuples(st.just("add"), TOXICS, STREAMS, st.sampled_from([1.0, 0.7, 0.0]))
STEP = st.tuples(
    st.integers(0, 6),  # ms of flowing data before the change
    st.one_of(
        ADD,
        st.tuples(st.just("remove"), st.integers(0, 20)),
        st.tuples(st.just("update"), st.integers(0, 20), st.floats(0, 1)),
    ),
)


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=st.binary(min_size=1, max_size=40_000), piece=st.integers(64, 4096),
       first=st.lists(ADD, min_size=0, max_size=3), steps=st.lists(STEP, min_size=1, max_size=10))
def test_bytes_arrive_exactly_in_order(client, name, echo, sockets, payload, piece, first, steps):
    proxy = client.create(name, "127.0.0.1:0", echo.address) if name not in client.proxies() else client.get(name)
    for toxic in client.toxics(name):
        client.remove_toxic(name, toxic)
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
    with sockets.connect(proxy.port, timeout=10) as s:
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
        reader.start()
        sender.start()
        for i, (pause_ms, op) in enumerate(steps, start=len(first)):
            time.sleep(pause_ms / 1000)
            apply(i, op)
        sender.join(20)
        s.shutdown(socket.SHUT_WR)  # the echo answers EOF with EOF once everything is back
        reader.join(20)
        assert not reader.is_alive()
    assert bytes(received) == payload
