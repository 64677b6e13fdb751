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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--scale", default="edge=3,supervisor=4")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/cluster.py needs root (it makes a local cluster)")
    from chaos.images import ensure_images
    from chaos.engine import connect

    ensure_images(connect())  # not timed
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
