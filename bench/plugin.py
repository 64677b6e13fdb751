"""Suite time of the shipped experiments through the pytest plugin, with and without stack reuse.

    .venv/bin/python bench/plugin.py [--backend local|docker] [--json results.json] [EXPERIMENT_DIR]

Runs ``pytest EXPERIMENT_DIR`` twice in subprocesses (reuse, then
``--roomquake-no-reuse``), each with its own state and report folders, and
prints wall time, the number of cold starts (testcases whose stack was not
reused, from the JUnit properties) and every testcase's verdict. The two
runs are sequential: they never compete for the CPU.
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
                      "reused": props.get("stack_reused") == "yes"})
    return {"mode": name, "wall_s": round(wall, 1), "exit": proc.returncode,
            "cold_starts": sum(1 for c in cases if not c["reused"]), "cases": cases,
            "tail": proc.stdout.strip().splitlines()[-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", default="experiments")
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rq-bench-plugin-") as tmp:
        results = [suite(args.folder, args.backend, reuse, Path(tmp)) for reuse in (True, False)]
    for r in results:
        verdicts = ", ".join(f"{c['verdict']}{'*' if c['reused'] else ''}" for c in r["cases"])
        print(f"{r['mode']:>9}: {r['wall_s']:6.1f} s wall, {r['cold_starts']} cold starts, exit {r['exit']} "
              f"({len(r['cases'])} experiments: {verdicts}; * = on a reused stack) {' '.join(r['tail'])}")
    saved = results[1]["wall_s"] - results[0]["wall_s"]
    print(f"reuse saves {saved:.1f} s ({saved / results[1]['wall_s']:.0%}) on {args.backend}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
