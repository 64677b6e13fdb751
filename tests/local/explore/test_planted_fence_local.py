"""The planted edge-no-fence bug on real processes: a split brain that only the per-listener history shows.

The primary host paused past HOST_GRACE loses its room to the backup account on the same edge. The
unmodified edge closes the old host's connection when the new generation arrives (4004); with the bug
the connection stays, and when the old host comes back the frames it had not sent reach the listeners
who already heard the new generation: ``history: {no_split_brain: true}`` fails, and nothing else does.

The bug's own proof (one run with it, one without), then explore finding it from the base experiment
fixtures/explore/edge-no-fence.yaml, which names no fault (marked ``slow``: about 3 minutes here).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.experiment.validate import validate_text
from chaos.explore import explore
from chaos.explore.schedule import Limits
from chaos.run import RunOptions, Runner

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "fixtures" / "explore" / "edge-no-fence.yaml"


def _with_method(planted: str) -> str:
    text = re.sub(r"PLANTED_BUG: [a-z-]+", f'PLANTED_BUG: "{planted}"', BASE.read_text())
    return text.replace("stack: audio-room", f"stack: {ROOT / 'docker' / 'stack.yaml'}") + (
        "seed: 1\nmethod:\n  - {id: pause-primary, at: 0s, fault: pause, target: {service: host, replica: 1}, for: 8s}\n")


@pytest.mark.timeout(400)
@pytest.mark.parametrize("planted, verdict", [("edge-no-fence", "deviated"), ("", "passed")])
def test_the_paused_primary_host_is_heard_again_only_with_the_bug(planted: str, verdict: str, tmp_path: Path,
                                                                   state_dir: Path):
    path = tmp_path / "fence.yaml"
    path.write_text(_with_method(planted))
    experiment, problems = validate_text(path.read_text(), str(path))
    assert experiment is not None, problems
    result = Runner(experiment, path, RunOptions(backend="local", progress=False, journal_dir=tmp_path)).run()
    assert result.verdict.value == verdict, result.reason
    failed = sorted(r.check for r in result.results if not r.ok)
    assert failed == (["history.no_split_brain"] if planted else []), result.reason


SPACE = {"faults": ["pause"], "services": ["host"]}
# Pauses of 8-9 s: HOST_GRACE is 3 s, but on 2 cores shared with a CPU hog and other workers the
# supervisor relaunched the room up to ~5 s after the pause began; a host resumed before the relaunch
# is simply heard again (no split brain), so a shorter pause made the bug show only sometimes.
LIMITS = Limits(max_faults=1, horizon=1.0, min_for=8.0, max_for=9.0)
SEED = 3


@pytest.mark.slow  # about 3 min on 2 loaded cores: search, shrink, 2 reruns, 1 run of the written file
@pytest.mark.timeout(600)
def test_explore_finds_the_split_brain_and_its_file_reproduces_it(tmp_path: Path, state_dir: Path):
    report = explore(BASE, 60.0, backend="local", seed=SEED, reruns=2, out_dir=tmp_path / "explored",
                     shrink_budget_s=20.0, limits=LIMITS, journal_dir=tmp_path / "journals", **SPACE)
    journal = json.loads(report.journal.read_text())
    assert report.status == "found", journal
    smallest = report.search.smallest  # type: ignore[union-attr]
    assert smallest is not None and list(smallest.failed) == ["history.no_split_brain"], journal
    assert [p.atom.label for p in smallest.schedule.faults] == ["pause host-1"]
    assert report.written is not None
    run = subprocess.run([sys.executable, "-m", "chaos", "run", "--backend", "local", "-q",
                          "--journal-dir", str(tmp_path / "reproduced"), str(report.written)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and ": DEVIATED" in run.stdout, run.stdout + run.stderr
