"""The floor of a bring-up: every Python instance started as its own interpreter that imports its service's
``preload`` list (a bare ``python -c "import ..."`` per service, timed), summed over the instances and divided by
the cores: what starting each instance as its own interpreter costs at the least, which every container of the
docker backend (and of docker-compose) does. Shared by bench/stack.py and bench/runner.py."""

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
    from chaos.stack.spec import Stack, apply_scale, load_stack

    stack = load_stack(stack_file)
    stack = Stack(spec=apply_scale(stack.spec, scale), path=stack.path)
    paths = [str((stack.root / p).resolve()) for p in stack.spec.local.pythonpath]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}
    per_service: dict[str, float] = {}
    total, pythons = 0.0, 0
    for name, svc in stack.spec.services.items():
        if svc.command[:1] not in (["python"], ["python3"]) or not svc.replicas:
            continue
        samples = []
        for _ in range(max(3, runs)):
            began = time.monotonic()
            subprocess.run([sys.executable, "-c", f"import {', '.join(svc.preload) or 'sys'}"], env=env, check=True,
                           cwd=ROOT)
            samples.append(time.monotonic() - began)
        per_service[name] = statistics.median(samples)
        total += per_service[name] * svc.replicas
        pythons += svc.replicas
    cores = os.cpu_count() or 1
    return {"one": total / pythons if pythons else 0.0, "pythons": pythons, "cores": cores, "floor": total / cores,
            "lowest": min(per_service.values(), default=0.0), "highest": max(per_service.values(), default=0.0)}


def describe(figures: dict[str, float]) -> str:
    return (f"floor: {int(figures['pythons'])} Python instances, each its own interpreter importing its service's "
            f"preload list ({figures.get('lowest', figures['one']):.2f}-{figures.get('highest', figures['one']):.2f} s, "
            f"mean {figures['one']:.2f} s) / {int(figures['cores'])} cores = {figures['floor']:.2f} s")
