"""Run registry: one small JSON file per running stack.

``roomquake stack up`` records what it started so that a later
``stack status`` / ``stack down`` / ``attach()`` (another process) finds it.
Directory: ``$ROOMQUAKE_STATE_DIR`` or ``~/.cache/roomquake/runs``.

While a local stack comes up its record is ``pending`` (owner labels plus the
process groups started so far), so that if the owner is SIGKILLed mid
bring-up ``roomquake clean`` / ``stack down --all`` can still find and end
them; the finished record replaces it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from chaos.stack.errors import UnknownRun


def state_dir() -> Path:
    base = os.environ.get("ROOMQUAKE_STATE_DIR")
    path = Path(base) if base else Path.home() / ".cache" / "roomquake" / "runs"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def run_dir(run_id: str) -> Path:
    """Per-run folder (logs of local processes live here)."""
    path = state_dir() / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def save(run_id: str, record: dict[str, Any]) -> Path:
    path = state_dir() / f"{run_id}.json"
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    data = json.dumps({**record, "run_id": run_id, "saved": time.time()}, indent=1).encode("utf-8")
    # Owner-only: a record holds the run's secrets (state store password, proxy token).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)  # atomic: a concurrent reader sees the old or the new record
    return path


def records() -> list[dict[str, Any]]:
    """Every recorded run, newest first."""
    out = []
    for path in state_dir().glob("*.json"):
        if path.name.startswith("runner-"):  # runner ledgers (chaos.run.ledger) share this folder
            continue
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return sorted(out, key=lambda r: r.get("created", 0), reverse=True)


def load(run_id: str = "latest") -> dict[str, Any]:
    if run_id == "latest":
        found = [r for r in records() if not r.get("pending")]  # half-up stacks cannot be attached
        if not found:
            raise UnknownRun(f"no running stack is recorded in {state_dir()}; start one with 'roomquake stack up'")
        return found[0]
    path = state_dir() / f"{run_id}.json"
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return record
    except FileNotFoundError:
        known = ", ".join(r["run_id"] for r in records()) or "none"
        raise UnknownRun(f"no running stack with run id {run_id!r} (known: {known})") from None


def remove(run_id: str) -> None:
    """Forget a run: its record and its folder (local processes' logs)."""
    (state_dir() / f"{run_id}.json").unlink(missing_ok=True)
    shutil.rmtree(state_dir() / run_id, ignore_errors=True)
