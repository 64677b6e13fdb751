"""``roomquake run --report`` for real: the report beside the journal, with the key probes charted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(180)
def test_run_report_writes_a_charted_report(tmp_path: Path) -> None:
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run([sys.executable, "-m", "chaos", "run", "--backend", "local", "--report", "--json",
                           "--journal-dir", str(tmp_path), "experiments/baseline.yaml"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    report = Path(result["report"])
    assert report == Path(result["journal"]).with_suffix(".html") and report.is_file()
    html = report.read_text()
    for panel in ("Listeners connected", "Join latency (s)", "Frame gaps (s)"):
        assert f'data-title="{panel}"' in html  # sampled because the report asked for them
    assert 'data-verdict="passed"' in html and "Not sampled in this run" not in html
    series = json.loads(Path(result["journal"]).read_text())["series"]
    assert {"crowd.connected", "crowd.join_latency_p95", "crowd.frame_gap_p99"} <= set(series)
