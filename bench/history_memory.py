"""What the crowd's per-listener history costs: memory for a long run, and CPU on the frame hot path.

    .venv/bin/python bench/history_memory.py                      # memory: 10,000 listeners, 10 frames/s, 10 min
    .venv/bin/python bench/history_memory.py --reconnect-every 5  # the same, reconnecting every 5 s (caps reached)
    .venv/bin/python bench/history_memory.py --hot-path           # frames/s through Listener.on_frame
    .venv/bin/python bench/history_memory.py --hot-path --docker /path/to/other/checkout/docker   # compare a tree

The real crowd code runs here: a ``Crowd`` and its ``Listener`` objects from
``audioroom.crowd`` (imported from ``--docker``), fed synthetic frames built
by ``audioroom.frames`` straight into ``Listener.on_frame``, with the
lifecycle calls the crowd makes around a connection (joined, closed). No
sockets: the clock the listeners read is replaced by a simulated one, so ten
minutes of frames run as fast as the CPU allows and every gap and delay is
what a real listener would have measured.

Memory: resident set (RSS, from /proc/self/statm) before the listeners exist
and after the run, plus the bytes of the history structures alone (a walk of
each listener's segments and events with ``sys.getsizeof``). The scenario:
every ``--reconnect-every`` seconds each listener's connection ends (4004
moved) and it rejoins the room's next generation; a small fraction of frames
is duplicated or arrives late.

Hot path: ``--listeners`` listeners on one generation, every one gets every
frame of ``--seconds`` of simulated time; frames/s = frames / CPU seconds of
this process, median and spread over ``--rounds``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load_audioroom(docker_dir: Path) -> tuple[Any, Any, Any]:
    sys.path.insert(0, str(docker_dir))
    os.environ.setdefault("PROMETHEUS_DISABLE_CREATED_SERIES", "true")
    crowd = importlib.import_module("audioroom.crowd")
    frames = importlib.import_module("audioroom.frames")
    config = importlib.import_module("audioroom.config")
    return crowd, frames, config


class Clock:
    """The simulated wall clock (seconds) that the crowd module reads instead of time.time."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def deep_size(obj: Any, seen: set[int]) -> int:
    """Bytes of ``obj`` and everything it holds (containers, tuples, numbers, strings), each counted once."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        size += sum(deep_size(x, seen) for x in obj)
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, s), seen) for s in obj.__slots__ if hasattr(obj, s))
    return size


def make_crowd(crowd_mod: Any, config_mod: Any, instance: str = "crowd-1") -> Any:
    env = {"RQ_SERVICE": "crowd", "RQ_INSTANCE": instance, "RQ_ROUTES": json.dumps({"control": "127.0.0.1:1"}),
           "CROWD_SEED": "1"}
    return crowd_mod.Crowd(config_mod.load(env), None)


def joined(listener: Any, edge: str, generation: int, now_ms: float) -> None:
    """What Listener._join records when a connection opens (nothing on trees without a history)."""
    history = getattr(listener, "history", None)
    if history is not None:
        history.connecting(edge)
        history.joined(edge, generation, now_ms)


def closed(listener: Any, code: int, reason: str, now_ms: float) -> None:
    """What Listener.run records when a connection ends."""
    history = getattr(listener, "history", None)
    if history is not None:
        history.closed(code, reason, now_ms)


def memory(args: argparse.Namespace) -> dict[str, Any]:
    crowd_mod, frames_mod, config_mod = load_audioroom(args.docker)
    clock = Clock(1_764_000_000.0)
    crowd_mod._now = clock
    rng = random.Random(1)
    gc.collect()
    rss_before = rss_bytes()
    crowd = make_crowd(crowd_mod, config_mod)
    listeners = [crowd_mod.Listener(crowd, "launch", i) for i in range(args.listeners)]
    crowd.listeners.extend(listeners)
    edges = ["edge-1", "edge-2", "edge-3"]
    generation, seq = 1, 0
    for listener in listeners:
        joined(listener, edges[0], generation, clock.t * 1000.0)
    period = 1.0 / args.fps
    ticks = int(args.minutes * 60 * args.fps)
    per_reconnect = int(args.reconnect_every * args.fps) if args.reconnect_every else 0
    anomalies = max(1, int(args.listeners * args.anomaly))
    started = time.process_time()
    for tick in range(ticks):
        clock.t += period
        if per_reconnect and tick and tick % per_reconnect == 0:
            # the room is relaunched: every connection ends, every listener rejoins the next generation
            for listener in listeners:
                closed(listener, 4004, "moved", clock.t * 1000.0)
            clock.t += 0.5
            generation, seq = generation + 1, 0
            edge = edges[generation % len(edges)]
            for listener in listeners:
                joined(listener, edge, generation, clock.t * 1000.0)
        sent_ms = (clock.t - 0.02) * 1000.0
        data = frames_mod.encode(frames_mod.Frame("launch", generation, seq, sent_ms), 160)
        for listener in listeners:
            listener.on_frame(data)
        if seq > 2:  # a few listeners get a duplicate or a late frame
            old = frames_mod.encode(frames_mod.Frame("launch", generation, seq - 2, sent_ms - 200), 160)
            for _ in range(anomalies):
                listeners[rng.randrange(len(listeners))].on_frame(data if rng.random() < 0.5 else old)
        seq += 1
    cpu = time.process_time() - started
    gc.collect()
    rss_after = rss_bytes()
    history_bytes = 0
    segments = events = truncated = 0
    history_of = getattr(listeners[0], "history", None)
    if history_of is not None:
        seen: set[int] = set()
        for listener in listeners:
            h = listener.history
            history_bytes += deep_size(h, seen)
            segments += len(h.segments) + 1
            events += len(h.events)
            truncated += bool(h.truncated)
    frames_total = ticks * args.listeners
    return {
        "listeners": args.listeners, "fps": args.fps, "minutes": args.minutes, "reconnect_every_s": args.reconnect_every,
        "frames": frames_total, "generations": generation, "cpu_s": round(cpu, 1),
        "rss_growth_mb": round((rss_after - rss_before) / 2**20, 1),
        "history_mb": round(history_bytes / 2**20, 1) if history_of is not None else None,
        "history_bytes_per_listener": round(history_bytes / args.listeners) if history_of is not None else None,
        "segments": segments, "events": events, "truncated_listeners": truncated,
        "docker": str(args.docker),
    }


def hot_path(args: argparse.Namespace) -> dict[str, Any]:
    crowd_mod, frames_mod, config_mod = load_audioroom(args.docker)
    clock = Clock(1_764_000_000.0)
    crowd_mod._now = clock
    crowd = make_crowd(crowd_mod, config_mod)
    listeners = [crowd_mod.Listener(crowd, "launch", i) for i in range(args.listeners)]
    for listener in listeners:
        joined(listener, "edge-1", 1, clock.t * 1000.0)
    ticks = int(args.seconds * args.fps)
    payloads = [frames_mod.encode(frames_mod.Frame("launch", 1, s, 0.0), 160) for s in range(ticks * args.rounds)]
    rates = []
    for r in range(args.rounds):
        gc.collect()
        started = time.process_time()
        for data in payloads[r * ticks:(r + 1) * ticks]:
            clock.t += 1.0 / args.fps
            for listener in listeners:
                listener.on_frame(data)
        rates.append(ticks * len(listeners) / (time.process_time() - started))
    return {"listeners": args.listeners, "frames_per_round": ticks * args.listeners,
            "frames_per_cpu_s_median": round(statistics.median(rates)),
            "frames_per_cpu_s_min": round(min(rates)), "frames_per_cpu_s_max": round(max(rates)),
            "rounds": args.rounds, "load_average": round(os.getloadavg()[0], 1), "docker": str(args.docker)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docker", type=Path, default=ROOT / "docker", help="the tree to import audioroom from")
    parser.add_argument("--hot-path", action="store_true", help="measure frames/s through on_frame instead of memory")
    parser.add_argument("--listeners", type=int, default=None, help="default 10,000 (memory), 2,000 (hot path)")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--reconnect-every", type=float, default=60.0, help="seconds between relaunches (0: never)")
    parser.add_argument("--anomaly", type=float, default=0.001, help="fraction of listeners given a dup/late frame per tick")
    parser.add_argument("--seconds", type=float, default=10.0, help="hot path: simulated seconds per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.listeners is None:
        args.listeners = 2000 if args.hot_path else 10_000
    result = hot_path(args) if args.hot_path else memory(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
