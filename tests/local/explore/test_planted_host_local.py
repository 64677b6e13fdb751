"""The planted host-stale-account bug on real processes: the two-fault schedule that shows it (the backup
host restarted, then the primary lost past HOST_GRACE) breaks the room with the bug and not without it.

This is the bug's own proof, as tests/unit/audioroom/test_planted_bugs.py is its logic's; explore finding it
from a base that names no fault is test_explore_host_local.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.experiment.validate import validate_text
from chaos.run import RunOptions, Runner

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENT = f"""
title: the backup host restarted, then the primary lost
stack: {ROOT / 'docker' / 'stack.yaml'}
profile: ci
scale: {{edge: 2, supervisor: 2}}
seed: 1
env:
  host: {{PLANTED_BUG: "BUG"}}
  supervisor: {{HOST_GRACE: 3s}}
load: {{room: launch, listeners: 20, ramp: 1s}}
settle: 20s
steady_state:
  - {{id: room-live, probe: room.state, expect: live}}
method:
  - {{id: restart-backup, at: 0s, fault: restart, target: {{service: host, replica: 2}}}}
  - {{id: lose-primary, at: 2s, fault: kill, target: {{service: host, replica: 1}}, for: 8s}}
recovery:
  - {{id: backup-account, probe: room.host, expect: account-2, within: 10s, undisturbed: pass}}
  - {{id: hearing-again, probe: crowd.hearing_ratio, expect: ">= 0.9", within: 10s, undisturbed: pass}}
abort_if:
  - {{id: room-ended, probe: room.state, expect: ended, for: 1s}}
"""


@pytest.mark.timeout(400)
@pytest.mark.parametrize("bug, verdicts", [("host-stale-account", {"deviated", "aborted"}), ("", {"passed"})])
def test_a_restarted_backup_host_with_the_bug_never_picks_the_room_up(bug: str, verdicts: set[str], tmp_path: Path,
                                                                      state_dir: Path):
    path = tmp_path / "host.yaml"
    path.write_text(EXPERIMENT.replace('"BUG"', f'"{bug}"'))
    experiment, problems = validate_text(path.read_text(), str(path))
    assert experiment is not None, problems
    result = Runner(experiment, path, RunOptions(backend="local", progress=False, journal_dir=tmp_path)).run()
    assert result.verdict.value in verdicts, result.reason
