"""Benchmark the fault proxy against a direct loopback connection (and a real
Toxiproxy when TOXIPROXY_URL is set), side by side in one run.

    .venv/bin/python bench/proxy.py [--seconds 1] [--rounds 5] [--json results.json]

Figures: bulk throughput (1 and 16 streams, no toxic), added round trip of a
1 KiB echo (p50, p99), error of a 50 ms latency toxic at 100 concurrent
connections (p50, p99: |round trip - 50 ms - the median round trip of the
same traffic without the toxic|), connection rate (connect, 1-byte request,
1-byte reply, close) with 4 client threads (the 2 cores are then saturated:
the ratio is about CPU per connection) and with 1 (the ratio is about the
latency a proxied connection adds). Upstream servers run in their own process, the proxy in its
own (``python -m chaos.proxy``), the clients here. Targets alternate within
each round and medians over rounds are reported, so load from other
processes on a shared machine hits every target alike.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 1 << 20
LATENCY_MS = 50.0

# ---------------------------------------------------------------- upstreams


def _serve(sock: socket.socket, handler) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def _sink(conn: socket.socket) -> None:
    buf = bytearray(BLOCK)
    with conn:
        while conn.recv_into(buf):
            pass


def _echo_all(sock: socket.socket) -> None:
    """Every echo connection on one thread with epoll: a thread per connection
    would add the GIL hand-offs of 100 threads to the latency figures."""
    import selectors

    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ, True)
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(conn)
                conn.close()
                continue
            sent = conn.send(data)  # an echo of 1 KiB or 64 B fits the socket buffer
            if sent < len(data):  # ... and if it ever does not, block rather than buffer
                conn.setblocking(True)
                conn.sendall(data[sent:])
                conn.setblocking(False)


def _one_byte(sock: socket.socket) -> None:
    # sequential on purpose: a thread per connection would measure thread start-up
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        with conn:
            if conn.recv(1):
                conn.sendall(b"y")


def upstreams_main() -> None:
    ports = {}
    loops = {"sink": lambda s: _serve(s, _sink), "echo": _echo_all, "onebyte": _one_byte}
    for name, loop in loops.items():
        sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
        ports[name] = sock.getsockname()[1]
        threading.Thread(target=loop, args=(sock,), daemon=True).start()
    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # until the parent goes away


# ---------------------------------------------------------------- measurements


def throughput(port: int, streams: int, seconds: float) -> float:
    """MB/s sent through ``port`` by ``streams`` sockets (sink upstream)."""
    payload = memoryview(bytearray(BLOCK))
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(streams)]
    total = [0] * streams
    deadline = time.perf_counter() + seconds

    def pump(i: int) -> None:
        s = socks[i]
        while time.perf_counter() < deadline:
            s.sendall(payload)
            total[i] += BLOCK

    start = time.perf_counter()
    threads = [threading.Thread(target=pump, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in socks:
        s.shutdown(socket.SHUT_WR)
    for s in socks:  # wait until the sink has everything: EOF comes back
        s.recv(1)
        s.close()
    elapsed = time.perf_counter() - start
    return sum(total) / elapsed / 1e6


def echo_rtts(port: int, count: int) -> list[float]:
    payload = os.urandom(1024)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rtts = []
        for i in range(count + 200):
            t0 = time.perf_counter()
            s.sendall(payload)
            got = 0
            while got < len(payload):
                got += len(s.recv(65536))
            if i >= 200:  # warm-up
                rtts.append(time.perf_counter() - t0)
    return rtts


def paced_rtts(port: int, conns: int, rounds: int, think: float) -> list[float]:
    """Round trips of a 64-byte echo over ``conns`` concurrent connections, each
    sending again ``think`` + 0-10 ms after its answer arrived.

    One thread with epoll drives every connection, so client-side thread
    wake-ups do not count against the proxy; connections start staggered
    over one latency period, as independent clients would.
    """
    import heapq
    import random
    import selectors

    sel = selectors.DefaultSelector()
    rng = random.Random(1)
    now = time.perf_counter()
    socks, sent, left, got = [], [0.0] * conns, [rounds] * conns, [0] * conns
    due: list[tuple[float, int]] = []
    for i in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        socks.append(s)
        heapq.heappush(due, (now + 0.1 + rng.random() * LATENCY_MS / 1000, i))
    rtts: list[float] = []
    pending = conns
    while pending:
        now = time.perf_counter()
        while due and due[0][0] <= now:
            _, i = heapq.heappop(due)
            sent[i] = time.perf_counter()
            socks[i].send(b"x" * 64)
        timeout = max(0.0, due[0][0] - time.perf_counter()) if due else 1.0
        for key, _ in sel.select(timeout):
            t = time.perf_counter()
            i = key.data
            got[i] += len(socks[i].recv(4096))
            if got[i] < 64:
                continue
            rtts.append(t - sent[i])
            got[i] = 0
            left[i] -= 1
            if left[i]:
                heapq.heappush(due, (t + think + rng.random() * 0.01, i))
            else:
                pending -= 1
    for s in socks:
        s.close()
    return rtts


def conn_rate(port: int, seconds: float, workers: int = 4) -> float:
    count = [0] * workers
    deadline = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < deadline:
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"x")
                s.recv(1)
            count[i] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / (time.perf_counter() - start)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# ---------------------------------------------------------------- servers under test


class Api:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: object | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "User-Agent": "bench"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
        return json.loads(text) if text else None

    def proxy(self, name: str, upstream_port: int) -> int:
        try:
            self.call("DELETE", f"/proxies/{name}")
        except Exception:  # noqa: BLE001 - not there
            pass
        info = self.call("POST", "/proxies", {"name": name, "listen": "127.0.0.1:0",
                                              "upstream": f"127.0.0.1:{upstream_port}"})
        return int(info["listen"].rsplit(":", 1)[1])  # type: ignore[index]


def cpu_seconds(pid: int | None) -> float:
    """User+system CPU time of a process (0 when unknown): a figure load hardly skews."""
    if pid is None:
        return 0.0
    from chaos.labels import cpu_seconds as of_pid

    return of_pid(pid)


def measure_all(targets: dict[str, Api | None], ports: dict[str, int], seconds: float,
                rounds: int, pids: dict[str, int] | None = None) -> dict[str, dict[str, float]]:
    """Every figure for every target; targets alternate within each round and
    the median over rounds is kept, so load from other processes hits all alike."""
    routes = {}
    for label, api in targets.items():
        routes[label] = dict(ports) if api is None else {k: api.proxy(f"bench_{k}", v) for k, v in ports.items()}
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in targets}

    def add(label: str, key: str, value: float) -> None:
        samples[label].setdefault(key, []).append(value)

    pids = pids or {}
    for r in range(rounds):
        for label, p in routes.items():
            c0 = cpu_seconds(pids.get(label))
            mbps = throughput(p["sink"], 1, seconds)
            add(label, "mbps_1", mbps)
            if label in pids:
                add(label, "cpu_s_per_gb", (cpu_seconds(pids[label]) - c0) / (mbps * seconds / 1000))
        for label, p in routes.items():
            add(label, "mbps_16", throughput(p["sink"], 16, seconds))
        for label, p in routes.items():
            rtts = echo_rtts(p["echo"], 2000)
            add(label, "rtt_p50_us", pct(rtts, 0.5) * 1e6)
            add(label, "rtt_p99_us", pct(rtts, 0.99) * 1e6)
        for label, p in routes.items():
            time.sleep(0.3)
            c0 = cpu_seconds(pids.get(label))
            rate = conn_rate(p["onebyte"], seconds)
            add(label, "conn_per_s", rate)
            if label in pids:
                add(label, "cpu_us_per_conn", (cpu_seconds(pids[label]) - c0) / (rate * seconds) * 1e6)
        for label, p in routes.items():  # one client at a time: the latency a connection's setup adds
            time.sleep(0.3)
            add(label, "conn_per_s_1", conn_rate(p["onebyte"], seconds, workers=1))
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    for label, api in targets.items():
        if api is None:
            continue
        # the same traffic without the toxic (same pacing, so the same load)
        # gives the round trip the 50 ms are added to
        port = routes[label]["echo"]
        reference = paced_rtts(port, 100, 12 * rounds, LATENCY_MS / 1000)
        base = pct(reference, 0.5)
        # how far the same traffic strays from its median with no toxic at all:
        # the machine's share of the error below
        add(label, "noise_p99_ms", pct([abs(rtt - base) for rtt in reference], 0.99) * 1e3)
        api.call("POST", "/proxies/bench_echo/toxics",
                 {"name": "lat", "type": "latency", "stream": "downstream", "attributes": {"latency": int(LATENCY_MS)}})
        errs = [abs(rtt - base - LATENCY_MS / 1000) for rtt in paced_rtts(port, 100, 12 * rounds, 0.0)]
        api.call("DELETE", "/proxies/bench_echo/toxics/lat")
        add(label, "lat_err_p50_ms", pct(errs, 0.5) * 1e3)
        add(label, "lat_err_p99_ms", pct(errs, 0.99) * 1e3)
        for k in ports:
            api.call("DELETE", f"/proxies/bench_{k}")
    return {label: {k: statistics.median(v) for k, v in figs.items()} for label, figs in samples.items()}


def start_ours() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "chaos.proxy", "--port", "0", "--seed", "1"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = proc.stdout.readline()  # type: ignore[union-attr]
    url = line.split("API on ", 1)[1].split()[0]
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="per throughput / connection-rate sample")
    parser.add_argument("--rounds", type=int, default=5, help="samples per figure (median kept)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--upstreams", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.upstreams:
        upstreams_main()
        return
    ups = subprocess.Popen([sys.executable, __file__, "--upstreams"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    ports = json.loads(ups.stdout.readline())  # type: ignore[union-attr]
    ours, url = start_ours()
    load_before = os.getloadavg()[0]
    try:
        targets: dict[str, Api | None] = {"direct": None, "roomquake": Api(url)}
        if os.environ.get("TOXIPROXY_URL"):
            targets["toxiproxy"] = Api(os.environ["TOXIPROXY_URL"])
        results = measure_all(targets, ports, args.seconds, args.rounds, {"roomquake": ours.pid})
    finally:
        ours.terminate()
        ours.wait(10)
        ups.terminate()
        ups.wait(10)
    results["_load"] = {"before": load_before, "after": os.getloadavg()[0]}
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(results: dict[str, dict[str, float]]) -> None:
    d = results["direct"]
    names = [n for n in ("roomquake", "toxiproxy") if n in results]
    # (the "_load" entry is not a target)
    print(f"load average before/after: {results.get('_load', {}).get('before', 0):.1f} / "
          f"{results.get('_load', {}).get('after', 0):.1f} (2 cores)")
    print(f"{'figure':34} {'direct':>10} " + " ".join(f"{n:>22}" for n in names))

    def row(title: str, key: str, fmt: str, ratio: bool) -> None:
        cells = []
        for n in names:
            v = results[n][key]
            cells.append(f"{fmt.format(v)} ({v / d[key]:.2f}x)" if ratio else fmt.format(v))
        print(f"{title:34} {fmt.format(d[key]):>10} " + " ".join(f"{c:>22}" for c in cells))

    row("bulk 1 stream, MB/s", "mbps_1", "{:.0f}", True)
    row("bulk 16 streams, MB/s", "mbps_16", "{:.0f}", True)
    row("connections/s (4 clients)", "conn_per_s", "{:.0f}", True)
    row("connections/s (1 client)", "conn_per_s_1", "{:.0f}", True)
    for q in ("p50", "p99"):
        key = f"rtt_{q}_us"
        cells = [f"+{results[n][key] - d[key]:.0f}" for n in names]
        print(f"{'1 KiB echo RTT ' + q + ', added µs':34} {d[key]:>10.0f} " + " ".join(f"{c:>22}" for c in cells))
    for key, title in (("cpu_s_per_gb", "proxy CPU s per GB (1 stream)"), ("cpu_us_per_conn", "proxy CPU µs per connection")):
        cells = [f"{results[n][key]:.2f}" if key in results[n] else "-" for n in names]
        print(f"{title:34} {'-':>10} " + " ".join(f"{c:>22}" for c in cells))
    for q in ("p50", "p99"):
        key = f"lat_err_{q}_ms"
        cells = [f"{results[n][key]:.2f}" for n in names]
        print(f"{'50 ms latency x100 conns, err ' + q + ' ms':34} {'-':>10} " + " ".join(f"{c:>22}" for c in cells))
    cells = [f"{results[n]['noise_p99_ms']:.2f}" for n in names]
    print(f"{'  same traffic, no toxic: p99 ms':34} {'-':>10} " + " ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
