"""The smallest failing schedule, written as an ordinary experiment file (``explored/<slug>.yaml``).

The file is the base experiment with the schedule as its method, its seed,
and a header comment saying how it was found; ``roomquake validate`` accepts
it and ``roomquake run`` reproduces the failure. A stack named by path is
re-anchored to the file's new folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from chaos.explore.base import Base
from chaos.explore.schedule import Schedule


def slug(schedule: Schedule) -> str:
    words = "-".join(p.atom.label for p in schedule.ordered())
    return re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")[:80] or "schedule"


def _stack_for(base: Base, out_dir: Path) -> str:
    """``stack:`` as the written file must say it: a name stays, a path is made relative to ``out_dir``."""
    stack = str(base.data.get("stack", "audio-room"))
    beside = (base.path.parent / stack)
    if ("/" in stack or stack.endswith((".yaml", ".yml", ".json"))) and beside.exists():
        return os.path.relpath(beside.resolve(), out_dir.resolve())
    return stack


def document(base: Base, schedule: Schedule, seed: int, out_dir: Path) -> dict[str, Any]:
    data, _ = base.make(schedule.method(), seed)
    data["stack"] = _stack_for(base, out_dir)
    data["title"] = f"Explored: {schedule.describe()}"
    data["description"] = (f"The smallest fault schedule found by roomquake explore from {base.path} that breaks "
                           f"its invariants. Base: {base.data.get('title', '')}").strip()
    tags = [t for t in data.get("tags", []) if t != "explored"]
    data["tags"] = [*tags, "explored"]
    order = ["title", "description", "tags", "stack", "profile", "scale", "env", "seed", "load", "settle", "sample_every",
             "observe", "steady_state", "method", "recovery", "history", "abort_if"]
    return {**{k: data[k] for k in order if k in data}, **{k: v for k, v in data.items() if k not in order}}


def write(base: Base, schedule: Schedule, seed: int, out_dir: Path, how: list[str]) -> Path:
    """Write the file (never over another: a number is added); ``how`` becomes its header comment."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = slug(schedule)
    path = out_dir / f"{name}.yaml"
    n = 2
    while path.exists():
        path, n = out_dir / f"{name}-{n}.yaml", n + 1
    header = "".join(f"# {line}\n" for line in how)
    body = yaml.safe_dump(document(base, schedule, seed, out_dir), sort_keys=False, allow_unicode=True, width=110)
    path.write_text(header + body, encoding="utf-8")
    return path
