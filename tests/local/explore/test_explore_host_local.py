"""roomquake explore finds the planted host-stale-account on real processes (local backend), from a base that
names no fault, by its small-first pass (every fault alone, then ordered pairs), and the file it writes
reproduces the failure with ``roomquake run`` on a fresh stack (the room ends: the base's abort condition).

The bug needs an ordered pair: restart the backup host (host-2), then lose the primary (host-1) past
HOST_GRACE. Time-boxed for the suite: the hosts only (kill, restart), at most 2 faults, 4 singles and then 8
allowed pairs (a pair that takes both hosts down at once is never drawn); seed 2 orders the failing pair
first among the pairs (tests/unit/explore shows how the seed orders them), so the search runs 5 schedules,
its shrink 2, then 2 reruns on fresh stacks and one run of the written file. bench/explore.py gives the
time to find it over seeds (README).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chaos.explore import explore
from chaos.explore.schedule import Limits

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "fixtures" / "explore" / "host-stale-account.yaml"


@pytest.mark.slow  # about 4 min: 7 examples, 2 reruns on fresh stacks, one run of the written file
@pytest.mark.timeout(900)
def test_explore_finds_the_stale_backup_host_by_an_ordered_pair_and_its_file_reproduces_it(tmp_path: Path,
                                                                                           state_dir: Path):
    assert "method" not in yaml.safe_load(BASE.read_text())  # the base names no fault
    report = explore(BASE, 480, backend="local", seed=2, reruns=2, out_dir=tmp_path / "explored",
                     shrink_budget_s=120, limits=Limits(max_faults=2, horizon=3.0, min_for=5.0, max_for=8.0),
                     small_first=1.0, faults=["kill", "restart"], services=["host"],
                     journal_dir=tmp_path / "journals")
    journal = json.loads(report.journal.read_text())
    assert report.status == "found", journal
    smallest = report.search.smallest  # type: ignore[union-attr]
    assert smallest is not None
    assert [p.atom.label for p in smallest.schedule.ordered()] == ["restart host-2", "kill host-1"], journal
    singles = [r for r in journal["runs"] if r["phase"] == "search" and ";" not in r["schedule"]]
    assert [r["outcome"] for r in singles] == ["passed"] * 4, journal["runs"]  # no fault alone shows it
    assert all(r["drawn"] == "small-first" for r in journal["runs"])
    assert [r["reused_stack"] for r in journal["reruns"]] == [False, False]  # each rerun on a fresh stack
    assert report.written is not None
    run = subprocess.run([sys.executable, "-m", "chaos", "run", "--backend", "local", "-q",
                          "--journal-dir", str(tmp_path / "reproduced"), str(report.written)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    verdict = [line for line in run.stdout.splitlines() if line.startswith(str(report.written))]
    # the room ends (the abort condition) or stays silent (a recovery check): deviated 1 or aborted 3
    assert len(verdict) == 1 and (run.returncode, verdict[0].split(": ")[1].split(" ")[0]) in {
        (1, "DEVIATED"), (3, "ABORTED")}, run.stdout + run.stderr
