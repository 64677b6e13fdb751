"""The ceiling of a bare broadcast on this machine: the yardstick for bench/crowd.py's figures.

    .venv/bin/python bench/broadcast.py --sizes 5000,10000,20000

One server process fans a 160-byte frame out to every connection 10 times a
second (uvloop, websockets.broadcast, compression off: what the edge does,
without rooms, state or heartbeats), and one client process holds
the connections with the crowd's lean client (audioroom.wsclient) and counts
the frames that arrive within 250 ms of their send time. Nothing else runs:
no control, no state store, no host. The stack's sustained figure reads as a
fraction of this one. Both processes are ended by pid; loopback only.
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


def _max_files() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(port: int) -> None:
    from websockets.asyncio.server import broadcast
    from websockets.asyncio.server import serve as ws_serve

    conns: set = set()

    async def handler(conn) -> None:  # noqa: ANN001 - websockets' connection
        conns.add(conn)
        try:
            await conn.wait_closed()
        finally:
            conns.discard(conn)

    async with ws_serve(handler, "127.0.0.1", port, compression=None, backlog=8192):
        print("ready", flush=True)
        loop = asyncio.get_running_loop()
        due = loop.time()
        pad = b"\0" * (FRAME_BYTES - 8)
        while True:
            broadcast(conns, struct.pack(">d", time.time()) + pad)
            due += 1 / FRAME_RATE
            await asyncio.sleep(max(0.0, due - loop.time()))


async def listen(port: int, size: int, window: float) -> None:
    sys.path.insert(0, str(ROOT / "docker"))
    from audioroom import wsclient

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
                    return await wsclient.connect("127.0.0.1", port, "/", on_message, 5.0)
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.5)
        return None

    protos = [p for p in await asyncio.gather(*(one() for _ in range(size))) if p is not None]
    connect_s = time.monotonic() - started
    await asyncio.sleep(2.0)  # the connections' first frames out of the way
    measuring = True
    await asyncio.sleep(window)
    measuring = False
    print(json.dumps({"connected": len(protos), "connect_s": round(connect_s, 2), **counts}), flush=True)


def ceiling(size: int, window: float, port: int) -> dict[str, object]:
    """One size: a fresh server and client; the share of frames on time against what was sent."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "docker")}
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], stdout=subprocess.PIPE, text=True,
                              env=env)
    client = None
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = subprocess.Popen([sys.executable, __file__, "--listen", str(port), "--size", str(size),
                                   "--window", str(window)], stdout=subprocess.PIPE, text=True, env=env)
        out, _ = client.communicate(timeout=CONNECT_BUDGET_S + 60 + window)
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(10)
    expected = size * FRAME_RATE * window
    # window edges can count a frame more per listener than were sent in it: a ratio is at most 1
    return {"listeners": size, **got, "on_time_ratio": round(min(1.0, got["on_time"] / expected), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5000,10000,15000,20000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--listen", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    _max_files()
    if args.serve or args.listen:
        import uvloop

        uvloop.run(serve(args.serve) if args.serve else listen(args.listen, args.size, args.window))
        return
    from chaos.stack.ports import free_ports

    results = []
    for size in args.sizes:
        result = ceiling(size, args.window, free_ports(1)[0])
        print(json.dumps(result), flush=True)
        results.append(result)
    ok = [r["listeners"] for r in results if r["on_time_ratio"] >= 0.99]
    print(json.dumps({"bare_broadcast_ceiling": max(ok) if ok else 0, "load_average": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
