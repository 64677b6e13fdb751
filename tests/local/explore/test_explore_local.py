"""roomquake explore on real processes (local backend): it finds the planted edge-slot-leak from a base
experiment that names no fault, the file it writes reproduces the failure with ``roomquake run``, and the
unmodified stack with the same budget reports nothing. Those two are marked ``slow`` (about 3 and 1.5
minutes here): ``-m "not slow"`` keeps this folder under a minute (Ctrl-C and the host bug).

Time-boxed for the suite: a small fault space (pauses of the edges, resets of the crowd's links to them;
the base names neither), at most 2 faults per schedule, a search budget of 75 s (two to three schedules
on this machine), 1 rerun on a fresh stack, and the written file run once by ``roomquake run``: two
reproductions besides the search's own (the issue's 5/5 is for bench/explore.py, not for the suite).
Hypothesis draws from the start here (``small_first=0``: this file is Hypothesis's generation and
shrinking on real processes; the small-first pass is test_explore_host_local.py's). Seed 11 draws a
reset of the whole crowd->edge link second, after the simplest schedule (a pause of edge-1): see
tests/unit/explore for how the draws follow the seed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chaos.explore import explore
from chaos.explore.schedule import Limits

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "fixtures" / "explore" / "edge-slot-leak.yaml"
SPACE = {"faults": ["pause", "reset_peer"], "services": ["edge"], "links": ["crowd->edge"]}
LIMITS = Limits(max_faults=2, horizon=2.0, min_for=0.5, max_for=2.0)
BUDGET_S, SHRINK_S, SEED = 75.0, 30.0, 11


def _explore(base: Path, tmp_path: Path, reruns: int = 1):
    return explore(base, BUDGET_S, backend="local", seed=SEED, reruns=reruns, out_dir=tmp_path / "explored",
                   shrink_budget_s=SHRINK_S, limits=LIMITS, small_first=0.0, journal_dir=tmp_path / "journals",
                   **SPACE)


@pytest.mark.slow  # about 3 min on 2 loaded cores: search, shrink, 1 rerun, 1 run of the written file
@pytest.mark.timeout(600)
def test_explore_finds_the_planted_slot_leak_and_its_file_reproduces_it(tmp_path: Path, state_dir: Path):
    assert "method" not in yaml.safe_load(BASE.read_text())  # the base names no fault
    report = _explore(BASE, tmp_path)
    journal = json.loads(report.journal.read_text())
    assert report.status == "found", journal
    assert report.confirmation is not None and report.confirmation.summary() == "failed 1/1 reruns"
    smallest = report.search.smallest  # type: ignore[union-attr]
    assert smallest is not None and "listeners-back" in smallest.failed
    assert any(p.atom.fault == "reset_peer" for p in smallest.schedule.faults)
    assert report.written is not None and report.written.exists()
    runs = journal["runs"]
    assert sum(1 for r in runs if r["reused_stack"]) >= len(runs) - 1  # one stack, renewed between examples
    validate = subprocess.run([sys.executable, "-m", "chaos", "validate", "--backend", "local", str(report.written)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    run = subprocess.run([sys.executable, "-m", "chaos", "run", "--backend", "local", "-q",
                          "--journal-dir", str(tmp_path / "reproduced"), str(report.written)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    verdicts = [line for line in run.stdout.splitlines() if line.startswith(str(report.written))]
    assert run.returncode == 1 and len(verdicts) == 1 and ": DEVIATED" in verdicts[0], run.stdout + run.stderr


@pytest.mark.slow  # the same search budget as above (75 s) and its bring-up
@pytest.mark.timeout(400)
def test_the_unmodified_stack_with_the_same_budget_reports_nothing(tmp_path: Path, state_dir: Path):
    unmodified = tmp_path / "unmodified.yaml"
    unmodified.write_text(BASE.read_text().replace("PLANTED_BUG: edge-slot-leak", 'PLANTED_BUG: ""'))
    report = _explore(unmodified, tmp_path)
    journal = json.loads(report.journal.read_text())
    assert report.status == "nothing", journal
    assert report.written is None and not (tmp_path / "explored").exists()
    outcomes = [r["outcome"] for r in journal["runs"]]
    assert "passed" in outcomes and "failed" not in outcomes, journal["runs"]


@pytest.mark.timeout(400)
def test_ctrl_c_rolls_the_running_example_back_takes_the_stack_down_and_keeps_the_journal(
        tmp_path: Path, state_dir: Path, cli_process):
    from chaos.stack import registry
    from chaos.stack.local import _proc_state

    unmodified = tmp_path / "unmodified.yaml"
    unmodified.write_text(BASE.read_text().replace("PLANTED_BUG: edge-slot-leak", 'PLANTED_BUG: ""'))
    run = cli_process(["explore", str(unmodified), "--budget", "10m", "--backend", "local", "--seed", "4",
                       "--faults", "pause", "--services", "edge", "--max-faults", "1", "--max-for", "5s",
                       "--journal-dir", str(tmp_path / "journals"), "--out", str(tmp_path / "explored")])
    run.wait_for("[  1]", timeout=300)  # the first example ran; the second starts on the same stack
    procs = next(r for r in registry.records())["state"]["procs"]
    run.wait_for("[  1]")
    time.sleep(5)  # into the second example: renewing, or its load, or its fault
    run.proc.send_signal(signal.SIGINT)
    assert run.finish(timeout=180) == 3, "\n".join(run.lines)
    journal_line = next(line for line in reversed(run.lines) if line.strip().startswith("journal: "))
    journal = json.loads(Path(journal_line.split("journal: ", 1)[1].strip()).read_text())
    assert journal["status"] == "interrupted" and journal["stopped"] == "interrupted", journal
    assert "failed" not in [r["outcome"] for r in journal["runs"]]
    for name, proc in procs.items():  # every process of the stack is gone
        assert _proc_state(proc["pid"], proc["start"]) == "exited", name
    assert not list(state_dir.glob("*.json"))  # no registry record, no ledger left
