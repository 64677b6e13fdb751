"""What a run costs beyond the experiment's own timeline, per backend.

Runs a minimal experiment (the reference stack at its default scale, a small
crowd, one steady state check, a 1 s method) N times and splits each run's
wall time by the journal's phase events: bring-up, load start, steady state
before, method, steady state after, rollback + teardown (with its
verification). Overhead = total - method. Prints each phase's median, min-max
and spread (max - min) over the runs, the load average, and the floor (see
bench/floor.py). ``--json FILE`` writes every sample.

    .venv/bin/python bench/runner.py --backend local --runs 5
    .venv/bin/python bench/runner.py --backend docker --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from floor import describe, floor  # noqa: E402  (bench/floor.py)

from chaos.experiment.validate import validate_text
from chaos.run import RunOptions, Runner
from chaos.run.journal import read

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = f"""
title: runner cost
stack: {ROOT / 'docker' / 'stack.yaml'}
profile: ci
load: {{room: launch, listeners: 20, ramp: 500ms}}
steady_state:
  - {{probe: room.state, expect: live}}
  - {{probe: crowd.connected_ratio, expect: ">= 0.95"}}
method:
  - wait: 1s
"""
PHASES = ["bring_up", "load", "steady_state_before", "method", "steady_state_after", "teardown"]


def split(journal: dict) -> dict[str, float]:
    marks = {e["phase"]: e["t"] for e in journal["events"] if e["kind"] == "phase_started"}
    end = journal["events"][-1]["t"]
    order = [p for p in PHASES if p in marks] + ["end"]
    marks["end"] = end
    out = {p: marks[order[i + 1]] - marks[p] for i, p in enumerate(order[:-1])}
    out["total"] = end
    out["overhead"] = end - out.get("method", 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "docker"], default="local")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    experiment, problems = validate_text(EXPERIMENT, "bench.yaml")
    assert experiment is not None, problems
    rows, failed, loads = [], [], [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.runs):
            result = Runner(experiment, ROOT / "bench" / "runner.yaml",
                            RunOptions(backend=args.backend, journal_dir=Path(tmp), progress=False)).run()
            loads.append(os.getloadavg()[0])
            if result.verdict.value != "passed":
                failed.append(f"run {n + 1}: {result.verdict.value}: {result.reason}")
                continue
            rows.append(split(read(result.journal)))
    for line in failed:
        print(line)
    if not rows:
        raise SystemExit("no run passed")
    print(f"backend {args.backend}, {len(rows)} of {args.runs} runs passed; seconds: median (min-max, spread);"
          f" load average {min(loads):.1f}-{max(loads):.1f}")
    for key in [*PHASES, "total", "overhead"]:
        values = [r[key] for r in rows if key in r]
        if values:
            print(f"  {key:<20} {statistics.median(values):6.2f}  ({min(values):.2f}-{max(values):.2f},"
                  f" spread {max(values) - min(values):.2f})")
    base = floor(runs=args.runs)
    print("  " + describe(base))
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "failed": failed, "floor": base, "load": loads}, indent=1))


if __name__ == "__main__":
    main()
