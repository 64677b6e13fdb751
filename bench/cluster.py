"""Local cluster up and down; the same stack brought up on swarm and on docker.

    sudo .venv/bin/python bench/cluster.py [--runs 3] [--nodes 3] [--scale edge=3,supervisor=4] [--json out.json]

Images are built (or found cached) first and not timed. Each run, in fresh
``roomquake`` processes as a user runs them, with a state folder of its own:

1. ``roomquake cluster up --nodes N --name bench``: namespaces, bridge,
   rules, engines, swarm, and the services image loaded into every node
   (the record's ``images_seconds`` is that last part);
2. ``roomquake stack up --backend swarm`` until healthy, then ``stack down``;
3. ``roomquake stack up --backend docker`` with the same instances (the
   stack file puts one crowd on every swarm node, so docker gets
   ``crowd=N``), then ``stack down``;
4. ``roomquake cluster down``.

Prints median and range over the runs. The cluster is taken down on any
failure.

    sudo .venv/bin/python bench/cluster.py --recovery 3 [--nodes 3]

Recovery instead: one cluster, then ``roomquake run --backend swarm`` of
experiments/edge-loss.yaml and experiments/node-loss.yaml in turn (edge-loss with
node-loss's detection threshold, HEARTBEAT_TIMEOUT, so that only what is lost
differs), ``--recovery`` times each; prints each recovery check's time (from the fault to the first
pass after the probe was seen failing: relaunched, listeners back, hearing
again) per experiment, median and range, and the load average at the start
and end. Runs whose verdict is not passed are counted and left out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NAME = "bench"


def roomquake(*args: str, env: dict[str, str]) -> tuple[float, str]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.monotonic() - began
    if done.returncode != 0:
        raise SystemExit(f"roomquake {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return took, done.stdout


def one_run(nodes: int, scale: str, env: dict[str, str], state: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["cluster_up_s"], _ = roomquake("cluster", "up", "--nodes", str(nodes), "--name", NAME, env=env)
    try:
        record = json.loads((state / "clusters" / f"{NAME}.json").read_text())
        figures["images_s"] = float(record.get("images_seconds", 0.0))
        for backend, extra in (("swarm", ""), ("docker", f",crowd={nodes}")):
            took, out = roomquake("stack", "up", "--backend", backend, "--scale", scale + extra, env=env)
            figures[f"{backend}_up_s"] = took
            healthy = re.search(r"(\d+) instances healthy in ([\d.]+)s", out)
            if healthy:
                figures[f"{backend}_instances"] = float(healthy.group(1))
            figures[f"{backend}_down_s"], _ = roomquake("stack", "down", env=env)
    finally:
        figures["cluster_down_s"], _ = roomquake("cluster", "down", "--name", NAME, env=env)
    return figures


RECOVERY = ("edge-loss", "node-loss")


def same_detection(name: str, state: Path) -> Path:
    """The experiment file to run: edge-loss with node-loss's detection settings (HEARTBEAT_TIMEOUT), so the
    two differ only in what is lost; node-loss's 2.5s threshold (for a loaded cluster) would otherwise
    read as a slower recovery."""
    import yaml

    path = ROOT / "experiments" / f"{name}.yaml"
    if name == "node-loss":
        return path
    doc = yaml.safe_load(path.read_text())
    node_loss = yaml.safe_load((ROOT / "experiments" / "node-loss.yaml").read_text())
    for service, settings in (node_loss.get("env") or {}).items():
        if "HEARTBEAT_TIMEOUT" in settings:
            doc.setdefault("env", {}).setdefault(service, {})["HEARTBEAT_TIMEOUT"] = settings["HEARTBEAT_TIMEOUT"]
    out = state / f"{name}.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def recovery_runs(runs: int, nodes: int, env: dict[str, str], state: Path) -> dict[str, list[dict[str, float]]]:
    """Each experiment ``runs`` times on one cluster: recovery times per passed run, and the verdicts."""
    out: dict[str, list[dict[str, float]]] = {name: [] for name in RECOVERY}
    roomquake("cluster", "up", "--nodes", str(nodes), "--name", NAME, env=env)
    try:
        for n in range(runs):
            for name in RECOVERY:
                journals = state / f"journals-{name}-{n}"
                began = time.monotonic()
                done = subprocess.run([sys.executable, "-m", "chaos", "run", "-q", "--backend", "swarm", "--journal-dir",
                                       str(journals), str(same_detection(name, state))],
                                      cwd=ROOT, env=env, capture_output=True, text=True)
                found = sorted(journals.glob("*.json"))
                journal = json.loads(found[-1].read_text()) if found else {}
                figures = {a["check"]: float(a["recovery_s"]) for a in journal.get("assertions", [])
                           if a.get("phase") == "recovery" and a.get("recovery_s") is not None}
                figures["run_s"] = time.monotonic() - began
                verdict = journal.get("verdict", f"exit {done.returncode}")
                print(f"run {n + 1} {name}: {verdict}; " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), flush=True)
                if verdict == "passed":
                    out[name].append(figures)
                else:
                    out.setdefault(f"{name} not passed", []).append({"exit": float(done.returncode)})
    finally:
        roomquake("cluster", "down", "--name", NAME, env=env)
    return out


def print_recovery(found: dict[str, list[dict[str, float]]], loads: tuple[str, str]) -> None:
    print(f"\nrecovery on swarm, load average {loads[0]} at the start, {loads[1]} at the end: median (min-max) over passed runs")
    for name in RECOVERY:
        runs = found[name]
        print(f"  {name}: {len(runs)} passed, {len(found.get(name + ' not passed', []))} not")
        for key in sorted({k for r in runs for k in r}):
            values = [r[key] for r in runs if key in r]
            print(f"    {key:<16} {statistics.median(values):7.2f}  ({min(values):.2f}-{max(values):.2f})")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--scale", default="edge=3,supervisor=4")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--recovery", type=int, metavar="RUNS", help="time recovery from node loss against edge loss instead")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/cluster.py needs root (it makes a local cluster)")
    from chaos.images import ensure_images
    from chaos.engine import connect

    ensure_images(connect())  # not timed
    if args.recovery:
        with tempfile.TemporaryDirectory(prefix="rq-bench-cluster-") as state:
            env = {**os.environ, "ROOMQUAKE_STATE_DIR": state}
            env.pop("DOCKER_HOST", None)
            start = load_average()
            found = recovery_runs(args.recovery, args.nodes, env, Path(state))
            print_recovery(found, (start, load_average()))
        if args.json:
            args.json.write_text(json.dumps({"nodes": args.nodes, "recovery": found}, indent=1))
        return
    runs = []
    with tempfile.TemporaryDirectory(prefix="rq-bench-cluster-") as state:
        env = {**os.environ, "ROOMQUAKE_STATE_DIR": state}
        env.pop("DOCKER_HOST", None)
        for n in range(args.runs):
            figures = one_run(args.nodes, args.scale, env, Path(state))
            runs.append(figures)
            print(f"run {n + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
    print(f"\n{args.nodes} nodes, scale {args.scale}, {args.runs} run(s): median (min-max)")
    for key in runs[0]:
        values = [r[key] for r in runs if key in r]
        print(f"  {key:<16} {statistics.median(values):7.1f}  ({min(values):.1f}-{max(values):.1f})")
    if args.json:
        args.json.write_text(json.dumps({"nodes": args.nodes, "scale": args.scale, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
