"""A game day against a stack someone else brought up (``stack up``): --attach, --auto; the stack stays up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def roomquake(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


@pytest.mark.timeout(240)
def test_attach_auto_runs_on_the_running_stack_and_leaves_it_up(gameday, tmp_path: Path, state_dir: Path) -> None:
    up = roomquake("stack", "up", "--backend", "local", "--scale", "edge=3,supervisor=4", "--profile", "ci")
    assert up.returncode == 0, up.stdout + up.stderr
    [record] = [json.loads(p.read_text()) for p in state_dir.glob("2*.json")]
    try:
        session = gameday(["--attach", record["run_id"], "--auto", "--journal-dir", str(tmp_path), "experiments/baseline.yaml"])
        assert session.finish(timeout=150) == 0, "\n".join(session.lines)
        journal = json.loads(Path(session.wait_for("journal: ").split("journal: ", 1)[1]).read_text())
        assert journal["verdict"] == "passed" and journal["stack_run_id"] == record["run_id"]
        ready = next(e for e in journal["events"] if e["kind"] == "stack_ready")
        assert ready["attached"] is True and ready["origin"] == "attached" and journal["stack_origin"] == "attached"
        assert any("stack attached: " in line for line in session.lines)  # the dashboard's event lines
        assert not any("brought up" in line for line in session.lines)
        assert any(line.startswith("report: ") for line in session.lines)
        assert any("probes: crowd.connected=" in line for line in session.lines)  # the plain dashboard
        status = roomquake("stack", "status", record["run_id"])
        assert status.returncode == 0 and "running" in status.stdout  # still up after the game day
    finally:
        down = roomquake("stack", "down", record["run_id"])
        assert down.returncode == 0, down.stdout + down.stderr
