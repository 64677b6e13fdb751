"""How big a crowd this machine carries: the audio-room services as local processes on loopback.

    .venv/bin/python bench/crowd.py                       # sustain search + surge, direct
    .venv/bin/python bench/crowd.py --proxy               # crowd -> edge through chaos.proxy
    .venv/bin/python bench/crowd.py --sizes 4000,8000 --surge 10000 --edges 2 --crowds 2
    .venv/bin/python bench/crowd.py --skip-sustain --set HEARTBEAT_TIMEOUT=5s --set HOST_GRACE=10s --set EDGE_ADMISSION=on

Sustain: listeners are added in steps (one room per edge, listeners spread
over crowd processes); at each size, after everyone is connected, a window of
--window seconds counts frames received within 250 ms of their send time
against the frames the host sent (size x FRAME_RATE x window). The largest
size with >= 99 % on time is the answer. Surge: a fresh stack, --surge
listeners asked to join at once; the join rate is the connected count over
time (peak over one second, and mean until all are in), with the relaunches
the supervisor made, the edges' missed heartbeats, the sheds the crowd saw
(EDGE_ADMISSION on) and the edges' and crowds' resident memory over the
listeners connected (the processes' own ~40 MB each included).

After the sustain search, the same sizes are run as a bare broadcast
(bench/broadcast.py: one server process with the edge's fan-out, one process
of lean clients, no stack) and the stack's largest sustained size is printed
as a share of that ceiling from the same run (``--no-bare`` skips it).

Each process holds at most 20,000 files here, so a crowd process carries at
most ~9,000 listeners and big crowds need several crowd processes (and edges).
Processes are started and ended by pid; nothing outside loopback is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from chaos.labels import cpu_seconds
from chaos.scrapes import parse_samples  # the toolkit's helpers (the bench drives the services, not the toolkit)
from chaos.stack.ports import free_ports
from chaos.stack.probes import sum_samples

import broadcast  # bench/broadcast.py, beside this file: the bare yardstick and the machine's CPU split

ROOT = Path(__file__).resolve().parents[1]
# Game-day timings, with the automation's timeouts long: this measures the
# fan-out, and a starved process must not be relaunched mid-measurement (that
# failure mode is what tests/local/audioroom shows). Override with --set.
PROFILE = {"HEARTBEAT_INTERVAL": "1s", "HEARTBEAT_TIMEOUT": "30s", "SUPERVISOR_TICK": "1s", "LEASE_TTL": "15s",
           "HOST_GRACE": "60s", "HOST_POLL_INTERVAL": "2s", "STATE_TIMEOUT": "2s", "CROWD_BACKOFF_BASE": "500ms",
           "CROWD_BACKOFF_MAX": "10s", "FRAME_RATE": "10", "FRAME_BYTES": "160", "EDGE_CAPACITY": "20000",
           "LOG_LEVEL": "WARNING"}
PER_CROWD_MAX = 9000


def http(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait(check, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except OSError:
            pass
        time.sleep(interval)
    raise SystemExit(f"bench: timed out waiting for {what}")


class Bench:
    """redis-server + control + edges + one supervisor + one host + crowds (+ chaos.proxy), by pid."""

    def __init__(self, edges: int, crowds: int, proxy: bool, keep_logs: bool = False) -> None:
        self.keep_logs = keep_logs
        self.tmp = Path(tempfile.mkdtemp(prefix="rq-bench-crowd-"))
        names = ["state", "control-1", "supervisor-1", "host-1"] + [f"edge-{i}" for i in range(1, edges + 1)] + [
            f"crowd-{i}" for i in range(1, crowds + 1)] + (["proxy"] if proxy else [])
        self.ports = dict(zip(names, free_ports(len(names))))
        self.routes = {n: f"127.0.0.1:{p}" for n, p in self.ports.items() if n != "proxy"}
        self.routes["control"] = self.routes["control-1"]
        self.crowd_routes = dict(self.routes)
        self.edges = [f"edge-{i}" for i in range(1, edges + 1)]
        self.crowds = [f"crowd-{i}" for i in range(1, crowds + 1)]
        self.procs: dict[str, subprocess.Popen] = {}
        self.proxy = proxy

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.tmp / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)

    def service(self, name: str, extra: dict[str, str] | None = None, routes: dict[str, str] | None = None) -> None:
        service = name.rsplit("-", 1)[0]
        env = {**os.environ, **PROFILE, **(extra or {}), "RQ_SERVICE": service, "RQ_INSTANCE": name,
               "RQ_BIND": "127.0.0.1", "RQ_PORT": str(self.ports[name]), "RQ_ROUTES": json.dumps(routes or self.routes),
               "PYTHONPATH": str(ROOT / "docker")}
        self.spawn(name, [sys.executable, "-m", f"audioroom.{service}"], env)

    def healthy(self, name: str) -> None:
        wait(lambda: http("GET", self.url(name, "/health"), timeout=2)[0] == 200, 20, f"{name} health")

    def __enter__(self) -> "Bench":
        self.spawn("state", [shutil.which("redis-server") or "redis-server", "--port", str(self.ports["state"]),
                             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        time.sleep(0.3)
        for name in ["control-1", *self.edges]:
            self.service(name)
        for name in ["control-1", *self.edges]:
            self.healthy(name)
        if self.proxy:
            self.start_proxy()
        self.service("supervisor-1")
        self.service("host-1", {"HOST_ACCOUNT": "bench"})
        for name in self.crowds:
            self.service(name, {"CROWD_SEED": name.rsplit("-", 1)[1]}, routes=self.crowd_routes)
        for name in ["supervisor-1", "host-1", *self.crowds]:
            self.healthy(name)
        for i, edge in enumerate(self.edges, 1):
            status, room = http("POST", self.url("host-1", "/rooms"), {"room": f"room-{i}", "backups": []})
            assert status == 201, room
        return self

    def start_proxy(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        port = self.ports["proxy"]
        self.spawn("proxy", [sys.executable, "-m", "chaos.proxy", "--host", "127.0.0.1", "--port", str(port)], env)
        wait(lambda: http("GET", f"http://127.0.0.1:{port}/version", timeout=2)[0] == 200, 20, "proxy")
        for edge, listen in zip(self.edges, free_ports(len(self.edges))):
            body = {"name": f"crowd->{edge}", "listen": f"127.0.0.1:{listen}", "upstream": self.routes[edge]}
            status, answer = http("POST", f"http://127.0.0.1:{port}/proxies", body)
            assert status == 201, answer
            self.crowd_routes[edge] = f"127.0.0.1:{listen}"

    def __exit__(self, *exc: object) -> None:
        for popen in self.procs.values():
            if popen.poll() is None:
                os.kill(popen.pid, signal.SIGTERM)
        for popen in self.procs.values():
            try:
                popen.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(popen.pid, signal.SIGKILL)
                popen.wait()
        if self.keep_logs:
            print(f"bench: logs in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # load ----------------------------------------------------------------------
    def add(self, total: int, path: str, spread_key: str, spread: float) -> None:
        """Spread ``total`` new listeners over crowds and rooms (crowd i -> rooms round robin)."""
        per_crowd = [total // len(self.crowds) + (i < total % len(self.crowds)) for i in range(len(self.crowds))]
        for ci, (crowd, count) in enumerate(zip(self.crowds, per_crowd)):
            rooms = len(self.edges)
            for ri in range(rooms):
                n = count // rooms + (ri < count % rooms)
                room = f"room-{(ci + ri) % rooms + 1}"
                if n:
                    status, body = http("POST", self.url(crowd, path), {"room": room, "listeners": n, spread_key: spread})
                    assert status == 202, body

    def stats(self) -> list[dict]:
        """Every crowd's /stats; a crowd too busy to answer within 30 s ends the bench with a message."""
        out = []
        for crowd in self.crowds:
            try:
                out.append(http("GET", self.url(crowd, "/stats"), timeout=30)[1])
            except (TimeoutError, OSError) as err:
                raise SystemExit(f"bench: {crowd} did not answer /stats ({err}); it is out of CPU") from None
        return out

    def connected(self) -> int:
        return sum(s["connected"] for s in self.stats())

    def metric(self, name: str, metric: str) -> float | None:
        """Sum of a metric's samples on one instance (the toolkit's parser); None when it does not answer
        within 10 s or has no such metric."""
        try:
            with urllib.request.urlopen(self.url(name, "/metrics"), timeout=10) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        return sum_samples(parse_samples(text), metric, {})

    def rss_mib(self, names: list[str]) -> float:
        """Resident memory of these processes now, MiB (from /proc: the bench holds their pids)."""
        total_kib = 0
        for name in names:
            for line in Path(f"/proc/{self.procs[name].pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        return total_kib / 1024


    def cpu_s(self, names: list[str]) -> float:
        """User + system CPU these processes have used so far, seconds (/proc/PID/stat fields 14, 15)."""
        return sum(cpu_seconds(self.procs[name].pid) for name in names)


def totals(stats: list[dict]) -> dict[str, float]:
    return {
        "received": sum(s["frames"]["received"] for s in stats),
        "on_time": sum(s["frames"]["within_250ms"] for s in stats),
        "lost": sum(s["frames"]["lost"] for s in stats),
        "kicks": sum(s["kicks"] for s in stats),
        "p99": max((s["frames"]["delay_p99_ms"] or 0) for s in stats),
        "p50": max((s["frames"]["delay_p50_ms"] or 0) for s in stats),
    }


def window(bench: Bench, size: int, seconds: float) -> dict[str, Any]:
    before = totals(bench.stats())
    cpu_before = bench.cpu_s(bench.edges), bench.cpu_s(bench.crowds)
    ticks = broadcast.machine_ticks()
    time.sleep(seconds)
    split = broadcast.machine_split(ticks, broadcast.machine_ticks())
    cpu = bench.cpu_s(bench.edges) - cpu_before[0], bench.cpu_s(bench.crowds) - cpu_before[1]
    after = totals(bench.stats())
    # Frames the host sent for these listeners in the window; window edges make the
    # count off by a frame or so per listener, so never let it fall below what arrived.
    received = after["received"] - before["received"]
    expected = max(size * float(PROFILE["FRAME_RATE"]) * seconds, received + after["lost"] - before["lost"])
    on_time = after["on_time"] - before["on_time"]
    return {"listeners": size, "expected": int(expected), "received": int(received),
            "on_time_ratio": round(on_time / expected, 4), "delay_p50_ms_cum": after["p50"],
            "delay_p99_ms_cum": after["p99"], "kicks": int(after["kicks"]),
            # CPU per frame received (fan-out in the edges, reading and measuring in the crowds): load-robust,
            # it says how many cores a size needs where the on-time ratio only says whether it got them
            "edge_us_per_frame": round(cpu[0] * 1e6 / received, 2) if received else None,
            "crowd_us_per_frame": round(cpu[1] * 1e6 / received, 2) if received else None,
            "machine_cpu": split}


def sustain(args: argparse.Namespace) -> list[dict]:
    results = []
    with Bench(args.edges, args.crowds, args.proxy, args.keep_logs) as bench:
        current = 0
        for size in args.sizes:
            bench.add(size - current, "/load", "ramp_s", args.ramp)
            current = size
            try:
                wait(lambda: bench.connected() >= size, args.ramp + 60, f"{size} connected", interval=0.5)
            except SystemExit:
                results.append({"listeners": size, "on_time_ratio": 0.0, "note": f"only {bench.connected()} connected"})
                break
            time.sleep(2)  # settle after the ramp
            result = window(bench, size, args.window)
            results.append(result)
            print(json.dumps(result), flush=True)
            if result["on_time_ratio"] < 0.99:
                break
    return results


def surge(args: argparse.Namespace) -> dict:
    with Bench(args.edges, args.crowds, args.proxy, args.keep_logs) as bench:
        started = time.monotonic()
        bench.add(args.surge, "/surge", "over_s", 0.0)
        samples = [(0.0, 0)]
        deadline = started + args.surge_timeout
        while time.monotonic() < deadline:
            n = bench.connected()
            samples.append((time.monotonic() - started, n))
            if n >= args.surge:
                break
            time.sleep(0.25)
        t_all, n_all = samples[-1]
        peak = n_all / t_all if t_all else 0.0  # a surge done within a second: its mean is its peak
        for i, (t, n) in enumerate(samples):
            earlier = [s for s in samples[:i] if t - s[0] >= 1.0]
            if earlier:
                peak = max(peak, (n - earlier[-1][1]) / (t - earlier[-1][0]))
        stats = bench.stats()
        missed = [bench.metric(e, "edge_heartbeats_missed_total") for e in bench.edges]
        result = {
            "surge": args.surge, "connected": n_all, "seconds_to_connect": round(t_all, 2),
            "admission": PROFILE.get("EDGE_ADMISSION", "off"),
            "relaunches": bench.metric("supervisor-1", "supervisor_relaunches_total"),
            "edge_heartbeats_missed": None if None in missed else sum(missed),
            "sheds": sum(s.get("sheds", 0) for s in stats),
            "rss_kib_per_listener": {
                "edges": round(bench.rss_mib(bench.edges) * 1024 / max(n_all, 1), 1),
                "crowds": round(bench.rss_mib(bench.crowds) * 1024 / max(n_all, 1), 1)},
            "mean_joins_per_s": round(n_all / t_all, 1) if t_all else None, "peak_joins_per_s": round(peak, 1),
            "join_p50_ms": max(s["joins"]["latency_p50_ms"] or 0 for s in stats),
            "join_p99_ms": max(s["joins"]["latency_p99_ms"] or 0 for s in stats),
            "join_failures": {k: sum(s["joins"]["failed"].get(k, 0) for s in stats)
                              for k in {k for s in stats for k in s["joins"]["failed"]}},
        }
        if n_all >= args.surge:
            time.sleep(2)
            result["after_surge"] = window(bench, args.surge, args.window)
        print(json.dumps(result), flush=True)
        return result


def bare(args: argparse.Namespace) -> dict[str, Any]:
    """The yardstick from the same run: bench/broadcast.py's bare broadcast (one server process with the edge's
    fan-out, one process of the crowd's lean clients, nothing else) at the sustain sizes, up to the first
    below 99 % on time."""
    results = []
    for size in args.sizes:
        result = broadcast.ceiling(size, args.window, free_ports(1)[0], "edge", "wsclient")
        print(json.dumps({"bare": result}), flush=True)
        results.append(result)
        if float(result["on_time_ratio"]) < 0.99:  # type: ignore[arg-type]
            break
    ok = [int(r["listeners"]) for r in results if float(r["on_time_ratio"]) >= 0.99]  # type: ignore[arg-type]
    return {"sizes": results, "ceiling": max(ok) if ok else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="2000,4000,6000,8000,10000,12000",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--surge", type=int, default=10000, help="listeners in the surge (0: skip)")
    parser.add_argument("--edges", type=int, default=2)
    parser.add_argument("--crowds", type=int, default=2)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds to add each sustain step")
    parser.add_argument("--surge-timeout", type=float, default=60.0)
    parser.add_argument("--proxy", action="store_true", help="crowd -> edge through chaos.proxy (one proxy per edge)")
    parser.add_argument("--skip-sustain", action="store_true")
    parser.add_argument("--no-bare", dest="bare", action="store_false",
                        help="skip the bare broadcast at the sustain sizes (bench/broadcast.py) after the sustain search")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs (path printed)")
    parser.add_argument("--set", action="append", default=[], metavar="VAR=VALUE",
                        help="override a profile variable for every service, e.g. --set HOST_GRACE=60s")
    args = parser.parse_args()
    for item in args.set:
        var, sep, value = item.partition("=")
        if not sep or not var:
            parser.error(f"--set {item!r}: expected VAR=VALUE")
        PROFILE[var] = value
    if max(args.sizes + [args.surge]) > args.crowds * PER_CROWD_MAX:
        parser.error(f"{args.crowds} crowd processes carry at most {args.crowds * PER_CROWD_MAX} listeners "
                     "(20,000 files per process): raise --crowds")
    out: dict[str, Any] = {"edges": args.edges, "crowds": args.crowds, "proxy": args.proxy,
                           "load_average_before": os.getloadavg()[0]}
    if not args.skip_sustain:
        out["sustain"] = sustain(args)
        ok = [r["listeners"] for r in out["sustain"] if r.get("on_time_ratio", 0) >= 0.99]
        out["largest_sustained"] = max(ok) if ok else 0
        if args.bare:
            out["bare_broadcast"] = bare(args)
            ceiling = out["bare_broadcast"]["ceiling"]
            # the stack's figure as a share of what the machine's bare broadcast carried in the same run
            out["stack_share_of_bare"] = round(out["largest_sustained"] / ceiling, 2) if ceiling else None
    if args.surge:
        out["surge"] = surge(args)
    out["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
