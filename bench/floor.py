"""The floor of a bring-up: one bare Python process with the imports the stack file preloads, times the number of
Python instances, divided by the cores (what starting each instance as its own interpreter costs at the least;
every container of the docker backend does). Shared by bench/stack.py and bench/runner.py."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def floor(stack_file: Path = ROOT / "docker" / "stack.yaml", runs: int = 3,
          scale: dict[str, int] | None = None) -> dict[str, float]:
    from chaos.stack.local import preload_modules
    from chaos.stack.spec import Stack, apply_scale, load_stack

    stack = load_stack(stack_file)
    stack = Stack(spec=apply_scale(stack.spec, scale), path=stack.path)
    modules = preload_modules(stack.spec)
    paths = [str((stack.root / p).resolve()) for p in stack.spec.local.pythonpath]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}
    samples = []
    for _ in range(max(3, runs)):
        began = time.monotonic()
        subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], env=env, check=True, cwd=ROOT)
        samples.append(time.monotonic() - began)
    pythons = sum(svc.replicas for svc in stack.spec.services.values() if svc.command[0] in ("python", "python3"))
    cores = os.cpu_count() or 1
    one = statistics.median(samples)
    return {"one": one, "pythons": pythons, "cores": cores, "floor": one * pythons / cores}


def describe(figures: dict[str, float]) -> str:
    return (f"floor: one Python with the preloaded imports {figures['one']:.2f} s x {int(figures['pythons'])} "
            f"Python instances / {int(figures['cores'])} cores = {figures['floor']:.2f} s")
