"""What checking the listeners' histories costs the toolkit: JSON parse + chaos.checkers.history.check.

Builds the documents of N listeners (default 10,000, spread over 4 crowd
instances, each with one relaunch: a segment per generation, and every
tenth listener reconnecting once more), serialises them as the crowd would
serve them, then times parsing and checking and reports the peak memory
Python allocated for it (tracemalloc). The crowd's own cost of keeping the
histories is bench/history_memory.py.

    .venv/bin/python bench/history_check.py
    .venv/bin/python bench/history_check.py --listeners 50000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos.checkers.history import check  # noqa: E402

T0 = 1_764_470_000.0


def documents(listeners: int, instances: int = 4) -> list[str]:
    def seg(gen: int, edge: str, first: float, last: float) -> dict:
        frames = int((last - first) * 10)
        return {"gen": gen, "edge": edge, "first_seq": 0, "last_seq": frames - 1, "first_t": T0 + first,
                "last_t": T0 + last, "frames": frames, "dups": 0, "reorders": 0, "max_gap_s": 0.13}

    docs = []
    for k in range(instances):
        rows = []
        for i in range(k, listeners, instances):
            segments = [seg(1, "edge-1", 1.0, 300.0), seg(2, "edge-2", 301.5 + (i % 50) / 10, 600.0)]
            if i % 10 == 0:
                segments.insert(1, seg(1, "edge-1", 120.5, 300.0))
            rows.append({"id": f"crowd-{k + 1}/{i}", "room": "launch", "joined_at": T0, "active": True,
                         "segments": segments, "events": [{"t": T0 + 300.2, "kind": "close", "code": 4004, "reason": "moved"}],
                         "truncated": False})
        docs.append(json.dumps({"instance": f"crowd-{k + 1}", "now": T0 + 600, "truncated_listeners": 0, "listeners": rows}))
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listeners", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    texts = documents(args.listeners)
    size = sum(len(t) for t in texts)
    records = {"launch": [{"generation": 2, "reason": "edge_lost", "failed_at": T0 + 300.0, "completed_at": T0 + 301.0}]}
    took = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        report = check([json.loads(t) for t in texts], records, rooms=["launch"])["launch"]
        took.append(time.perf_counter() - started)
    assert report.listeners == args.listeners and report.relaunches[0].back_within["10"] == 1.0
    tracemalloc.start()  # once, apart: tracing slows Python down several times
    check([json.loads(t) for t in texts], records, rooms=["launch"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{args.listeners} listeners, {size / 1e6:.1f} MB of history JSON from 4 instances; {args.rounds} rounds")
    print(f"  parse + check: median {statistics.median(took):.2f} s (min {min(took):.2f}, max {max(took):.2f})")
    print(f"  peak memory allocated by parse + check: {peak / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
