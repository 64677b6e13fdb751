"""The fixture Compose projects' own experiments pass on docker, run from their imported stack files."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "compose"


@pytest.mark.parametrize("project", ["shop", "tasks"])
def test_the_projects_experiments_pass_on_docker(project: str, compose_base: str, roomquake) -> None:
    files = sorted(str(p) for p in (FIXTURES / project / "experiments").glob("*.yaml"))
    assert len(files) == 3  # web->db latency, worker loss and drain, database pause
    done = roomquake("run", "--backend", "docker", *files)
    verdicts = [line for line in done.stdout.splitlines() if line.startswith(str(FIXTURES))]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert len(verdicts) == 3 and all(": PASSED" in line for line in verdicts), verdicts
