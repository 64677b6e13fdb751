"""A relaunch appears as a progress line when the sampler sees it (real run, local backend)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(300)
def test_edge_loss_shows_the_relaunch_in_its_progress(tmp_path: Path, state_dir: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "chaos", "run", "--backend", "local", "--journal-dir", str(tmp_path),
                           "experiments/edge-loss.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=280,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = done.stderr.splitlines()
    kill = next(i for i, line in enumerate(lines) if re.search(r"fault kill \[kill-edge\] hit edge-\d", line))
    relaunch = next(i for i, line in enumerate(lines) if "relaunch #1 seen (room.relaunches{room=launch}: 0 -> 1)" in line)
    assert relaunch > kill, "\n".join(lines)
    journal = json.loads(next(tmp_path.glob("*.json")).read_text())
    seen = [e for e in journal["events"] if e["kind"] == "relaunch_seen"]
    assert seen and seen[0]["count"] == 1 and seen[0]["previous"] == 0
