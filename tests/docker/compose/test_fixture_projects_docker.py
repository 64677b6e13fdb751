"""The fixture Compose projects' own experiments pass on docker, run from their imported stack files: the shop's
three from `roomquake run`; of the tasks project's, web->db latency from `roomquake run`, and worker loss and the
database pause from pytest and a game day (the last test), so that each runs once on docker here."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "compose"


# the tasks project's other two: test_pytest_collection_game_days_and_reports_work_on_an_imported_stack
@pytest.mark.parametrize(("project", "names"), [("shop", ["db-pause", "web-db-latency", "worker-loss"]),
                                               ("tasks", ["api-db-latency"])], ids=["shop", "tasks"])
def test_the_projects_experiments_pass_on_docker(project: str, names: list[str], compose_base: str, roomquake) -> None:
    shipped = sorted(p.stem for p in (FIXTURES / project / "experiments").glob("*.yaml"))
    assert len(shipped) == 3 and set(names) <= set(shipped)  # web->db latency, worker loss and drain, database pause
    files = [str(FIXTURES / project / "experiments" / f"{name}.yaml") for name in names]
    done = roomquake("run", "--backend", "docker", *files)
    verdicts = [line for line in done.stdout.splitlines() if line.startswith(str(FIXTURES))]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert len(verdicts) == len(names) and all(": PASSED" in line for line in verdicts), verdicts


def test_pytest_collection_game_days_and_reports_work_on_an_imported_stack(compose_base: str, roomquake,
                                                                           tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    tasks = FIXTURES / "tasks" / "experiments"
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path), "--roomquake-backend",
         "docker", "--roomquake-report-dir", str(tmp_path / "pytest"), str(tasks / "workers-loss.yaml")],
        cwd=tmp_path, env={**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / "state")}, capture_output=True, text=True,
        timeout=900)
    assert collected.returncode == 0 and "1 passed" in collected.stdout, collected.stdout[-3000:]
    gameday = roomquake("gameday", "--auto", "--backend", "docker", "--journal-dir", str(tmp_path / "gameday"),
                        str(tasks / "postgres-pause.yaml"))
    assert gameday.returncode == 0, gameday.stdout[-3000:] + gameday.stderr[-2000:]
    [report] = (tmp_path / "gameday").glob("*.html")
    assert "pause-postgres" in report.read_text() and "PASSED" in report.read_text()
    # the reports speak of the project's own series, not of the audio-room's
    pages = [*(tmp_path / "pytest").rglob("*.html"), report]
    assert len(pages) >= 2
    for page in pages:
        text = page.read_text()
        assert "Not sampled in this run" not in text and "Join latency" not in text, page
        assert "This stack keeps no listener histories." in text, page
