"""Suite time of the shipped experiments through the pytest plugin, with and without stack reuse.

    .venv/bin/python bench/plugin.py [--backend local|docker] [--runs N] [--json results.json] [EXPERIMENT_DIR]

Runs ``pytest EXPERIMENT_DIR`` twice in subprocesses (reuse, then
``--roomquake-no-reuse``), each with its own state and report folders, and
prints wall time, the number of cold starts (testcases whose stack was not
reused, from the JUnit properties), every testcase's verdict, and the stack
time: from each journal, the bring-up phase (on a reused stack: its reset
and verification; without reuse it also takes the previous stack down) plus
the teardown phase, which is what reuse can save; the rest is the
experiments' own timelines. The pool's last teardown, after the last test,
is in no journal in either mode. The two runs are sequential: they never
compete for the CPU. ``--runs N`` repeats both and prints medians and spreads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def suite(folder: str, backend: str, reuse: bool, work: Path) -> dict:
    name = "reuse" if reuse else "no-reuse"
    junit = work / f"{name}.xml"
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(work / f"state-{name}")}
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", folder, "--roomquake-backend", backend,
            "--roomquake-report-dir", str(work / name), f"--junitxml={junit}"]
    if not reuse:
        args.append("--roomquake-no-reuse")
    started = time.monotonic()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    cases = []
    for case in ET.parse(junit).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        cases.append({"name": case.get("name"), "time": float(case.get("time") or 0), "verdict": props.get("verdict"),
                      "reused": props.get("stack_reused") == "yes", "stack_s": stack_seconds(props.get("journal"))})
    return {"mode": name, "wall_s": round(wall, 1), "exit": proc.returncode,
            "cold_starts": sum(1 for c in cases if not c["reused"]), "cases": cases,
            "stack_s": round(sum(c["stack_s"] for c in cases), 1), "tail": proc.stdout.strip().splitlines()[-1:]}


def stack_seconds(journal: str | None) -> float:
    """Bring-up (or reset) plus teardown, from a journal's phase events."""
    if not journal:
        return 0.0
    try:
        events = json.loads(Path(journal).read_text())["events"]
    except (OSError, ValueError, KeyError):
        return 0.0
    marks = [(e["phase"], e["t"]) for e in events if e["kind"] == "phase_started"]
    end = events[-1]["t"] if events else 0.0
    total = 0.0
    for i, (phase, t) in enumerate(marks):
        if phase in ("bring_up", "teardown"):
            total += (marks[i + 1][1] if i + 1 < len(marks) else end) - t
    return total


def main() -> None:
    import statistics

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="experiments")
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="rq-bench-plugin-") as tmp:
            rounds.append([suite(args.folder, args.backend, reuse, Path(tmp)) for reuse in (True, False)])
    for results in rounds:
        for r in results:
            verdicts = ", ".join(f"{c['verdict']}{'*' if c['reused'] else ''}" for c in r["cases"])
            print(f"{r['mode']:>9}: {r['wall_s']:6.1f} s wall, stack {r['stack_s']:5.1f} s, {r['cold_starts']} cold "
                  f"starts, exit {r['exit']} ({len(r['cases'])} experiments: {verdicts}; * = on a reused stack) "
                  f"{' '.join(r['tail'])}")
        same = [c["verdict"] for c in results[0]["cases"]] == [c["verdict"] for c in results[1]["cases"]]
        print(f"  verdicts {'identical' if same else 'DIFFER'} with and without reuse")

    def figure(what: str, values: list[float]) -> str:
        return f"{what} {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    wall = [r[0]["wall_s"] / r[1]["wall_s"] for r in rounds]
    stack = [r[0]["stack_s"] / r[1]["stack_s"] for r in rounds if r[1]["stack_s"]]
    print(f"on {args.backend}, {args.runs} run(s): reuse / no reuse: {figure('wall', wall)}, {figure('stack', stack)};"
          f" stack seconds reuse {statistics.median(r[0]['stack_s'] for r in rounds):.1f},"
          f" no reuse {statistics.median(r[1]['stack_s'] for r in rounds):.1f}")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
