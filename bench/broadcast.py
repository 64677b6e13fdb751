"""The ceiling of a bare broadcast on this machine: the yardstick for bench/crowd.py's figures.

    .venv/bin/python bench/broadcast.py --sizes 5000,10000,20000
    .venv/bin/python bench/broadcast.py --server websockets          # websockets.broadcast, for comparison
    .venv/bin/python bench/broadcast.py --server picows --client picows   # pip install picows first

One server process fans a 160-byte frame out to every connection 10 times a
second (uvloop, websockets, compression off, each frame framed once and its
bytes written to every connection: what the edge does with audioroom.fanout,
without rooms, state or heartbeats), and one client process holds the
connections with the crowd's lean client (audioroom.wsclient) and counts the
frames that arrive within 250 ms of their send time. Nothing else runs: no
control, no state store, no host. The stack's sustained figure reads as a
fraction of this one (bench/crowd.py runs it after its sustain search).
``--server websockets`` measures ``websockets.broadcast`` (a frame built
per connection), ``--server picows`` / ``--client picows`` picows, a Cython
WebSocket layer (not a dependency of roomquake: this is how a switch would
be judged before making it). Each window also reports the machine's CPU
split from /proc/stat. Both processes are ended by pid; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAME_BYTES, FRAME_RATE, ON_TIME_S = 160, 10.0, 0.25
CONNECT_BUDGET_S = 60.0  # a server too busy to take everyone by then is past its ceiling: measure who is in


def machine_ticks() -> list[int]:
    """The machine's CPU time so far by kind (/proc/stat's first line: user, nice, system, idle, iowait, irq,
    softirq, steal), in clock ticks."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def machine_split(before: list[int], after: list[int]) -> dict[str, float]:
    """Shares of the machine's CPU between two /proc/stat readings. The kernel's part (system, softirq) is what
    a process's own CPU time leaves out in part: softirq, where loopback TCP delivers each frame, is charged to
    nobody, so the per-frame figures understate what a listener costs."""
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta) or 1
    user, nice, system, idle, iowait, irq, softirq, steal = delta
    return {"user": round((user + nice) / total, 3), "system": round(system / total, 3),
            "softirq": round((softirq + irq) / total, 3), "idle": round((idle + iowait) / total, 3),
            "steal": round(steal / total, 3)}


def _max_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _frame() -> bytes:
    return struct.pack(">d", time.time()) + b"\0" * (FRAME_BYTES - 8)


async def _paced(send_to_all) -> None:  # noqa: ANN001 - one frame to every connection
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        send_to_all(_frame())
        due += 1 / FRAME_RATE
        await asyncio.sleep(max(0.0, due - loop.time()))


async def serve_picows(port: int) -> None:
    """The same broadcast with picows (a Cython WebSocket layer): one send per connection, no framing in Python."""
    from picows import WSListener, WSMsgType, ws_create_server

    conns: set = set()

    class Listener(WSListener):
        def on_ws_connected(self, transport) -> None:  # noqa: ANN001
            conns.add(transport)

        def on_ws_disconnected(self, transport) -> None:  # noqa: ANN001
            conns.discard(transport)

        def on_ws_frame(self, transport, frame) -> None:  # noqa: ANN001
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    def send_to_all(data: bytes) -> None:
        for transport in conns:
            transport.send(WSMsgType.BINARY, data)

    server = await ws_create_server(lambda _request: Listener(), "127.0.0.1", port, backlog=8192)
    async with server:
        print("ready", flush=True)
        await _paced(send_to_all)


async def serve(port: int, framed_once: bool = False) -> None:
    from websockets.asyncio.server import broadcast
    from websockets.asyncio.server import serve as ws_serve

    send_to_all = broadcast
    if framed_once:  # the edge's fan-out: the frame built once, its bytes written to every transport
        sys.path.insert(0, str(ROOT / "docker"))
        from audioroom.fanout import fan_out

        send_to_all = fan_out  # type: ignore[assignment]

    conns: set = set()

    async def handler(conn) -> None:  # noqa: ANN001 - websockets' connection
        conns.add(conn)
        try:
            await conn.wait_closed()
        finally:
            conns.discard(conn)

    async with ws_serve(handler, "127.0.0.1", port, compression=None, backlog=8192):
        print("ready", flush=True)
        await _paced(lambda data: send_to_all(conns, data))


async def connect_picows(port: int, on_message, timeout: float) -> object:  # noqa: ANN001
    """One picows client connection whose binary frames go to ``on_message`` (as the lean client's do)."""
    from picows import WSListener, WSMsgType, ws_connect

    class Listener(WSListener):
        def on_ws_frame(self, transport, frame) -> None:  # noqa: ANN001
            if frame.msg_type == WSMsgType.BINARY:
                on_message(frame.get_payload_as_memoryview())
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.disconnect()

    transport, _ = await ws_connect(Listener, f"ws://127.0.0.1:{port}/", websocket_handshake_timeout=timeout)
    return transport


async def listen(port: int, size: int, window: float, client: str = "wsclient", server_pid: int = 0) -> None:
    sys.path.insert(0, str(ROOT / "docker"))
    from audioroom import wsclient

    async def connect(on_message) -> object:  # noqa: ANN001
        if client == "picows":
            return await connect_picows(port, on_message, 5.0)
        return await wsclient.connect("127.0.0.1", port, "/", on_message, 5.0)

    counts = {"received": 0, "on_time": 0}
    measuring = False

    def on_message(data: bytes) -> None:
        if measuring:
            counts["received"] += 1
            if time.time() - struct.unpack_from(">d", data)[0] <= ON_TIME_S:
                counts["on_time"] += 1

    joining = asyncio.Semaphore(256)

    started = time.monotonic()
    give_up = started + CONNECT_BUDGET_S

    async def one() -> object:
        async with joining:
            while time.monotonic() < give_up:
                try:
                    return await connect(on_message)
                except (OSError, TimeoutError, ConnectionError):
                    await asyncio.sleep(0.5)
        return None

    protos = [p for p in await asyncio.gather(*(one() for _ in range(size))) if p is not None]
    connect_s = time.monotonic() - started
    await asyncio.sleep(2.0)  # the connections' first frames out of the way
    from chaos.labels import cpu_seconds

    # CPU per frame received: what each side spends, which a loaded machine changes far less than lateness
    cpu_before = cpu_seconds(os.getpid()), cpu_seconds(server_pid)
    ticks = machine_ticks()
    measuring = True
    await asyncio.sleep(window)
    measuring = False
    split = machine_split(ticks, machine_ticks())
    server_cpu = cpu_seconds(server_pid) - cpu_before[1]
    client_cpu = cpu_seconds(os.getpid()) - cpu_before[0]
    per_frame = {f"{side}_us_per_frame": round(cpu * 1e6 / counts["received"], 2) if counts["received"] else None
                 for side, cpu in (("server", server_cpu), ("client", client_cpu))}
    print(json.dumps({"connected": len(protos), "connect_s": round(connect_s, 2), **counts, **per_frame,
                      "machine_cpu": split}), flush=True)


def ceiling(size: int, window: float, port: int, server_lib: str = "websockets",
            client_lib: str = "wsclient") -> dict[str, object]:
    """One size: a fresh server and client; the share of frames on time against what was sent."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "docker")}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--server", server_lib], stdout=subprocess.PIPE, text=True,
                              env=env)
    client = None
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = subprocess.Popen([sys.executable, __file__, "--listen", str(port), "--size", str(size),
                                   "--window", str(window), "--client", client_lib, "--server-pid", str(server.pid)],
                                  stdout=subprocess.PIPE, text=True, env=env)
        out, _ = client.communicate(timeout=CONNECT_BUDGET_S + 60 + window)
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(10)
    expected = size * FRAME_RATE * window
    # window edges can count a frame more per listener than were sent in it: a ratio is at most 1
    return {"listeners": size, "server": server_lib, "client": client_lib, **got, "on_time_ratio": round(min(1.0, got["on_time"] / expected), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,10000,15000,20000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--server", choices=["edge", "websockets", "picows"], default="edge",
                        help="the broadcasting server: edge (websockets, each frame framed once and its bytes "
                             "written to every listener, as the edge does), websockets (websockets.broadcast, "
                             "which frames it again for each), picows")
    parser.add_argument("--client", choices=["wsclient", "picows"], default="wsclient",
                        help="the listeners' client (wsclient: the crowd's lean client)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--listen", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _max_files()
    if args.serve or args.listen:
        import uvloop

        if args.serve:
            uvloop.run(serve_picows(args.serve) if args.server == "picows"
                       else serve(args.serve, framed_once=args.server == "edge"))
        else:
            uvloop.run(listen(args.listen, args.size, args.window, args.client, args.server_pid))
        return
    from chaos.stack.ports import free_ports

    results = []
    for size in args.sizes:
        result = ceiling(size, args.window, free_ports(1)[0], args.server, args.client)
        print(json.dumps(result), flush=True)
        results.append(result)
    ok = [r["listeners"] for r in results if r["on_time_ratio"] >= 0.99]
    summary: dict[str, object] = {"bare_broadcast_ceiling": max(ok) if ok else 0, "load_average": os.getloadavg()[0]}
    costed = [r for r in results if r.get("server_us_per_frame") and r.get("client_us_per_frame")]
    if costed:  # what one listener costs both sides, from the largest size measured: the cores a crowd needs
        top = max(costed, key=lambda r: int(r["connected"]))  # type: ignore[call-overload]
        us = float(top["server_us_per_frame"]) + float(top["client_us_per_frame"])  # type: ignore[arg-type]
        summary["cpu_us_per_listener_frame"] = round(us, 2)
        summary["cores_for"] = {n: round(n * FRAME_RATE * us / 1e6, 2) for n in (5_000, 10_000, 20_000)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
