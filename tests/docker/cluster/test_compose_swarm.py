"""An imported Compose project on a real 2-node swarm: its build-context images loaded on the nodes, its mounts,
aliases, workers on no port and kept volume; its own experiments pass from `roomquake run` and a game day on a
stack kept up between them, and from pytest on a stack of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parents[3] / "fixtures" / "compose" / "tasks"


@pytest.mark.timeout(1500)
def test_the_tasks_projects_experiments_pass_on_swarm(local_cluster, compose_base, tools, cluster_state, tmp_path):
    import docker

    from chaos.stack.swarm_clean import run_resources

    up = tools.roomquake("stack", "up", "--backend", "swarm", "--file", str(TASKS / "stack.yaml"), timeout=900)
    run_id = max(cluster_state.glob("*.json"), key=lambda p: p.stat().st_mtime).stem
    manager = docker.DockerClient(base_url=local_cluster.manager_socket, timeout=60)
    try:
        record = json.loads((cluster_state / f"{run_id}.json").read_text())
        assert record["backend"] == "swarm", up.stdout
        services = {s.name: s.attrs["Spec"] for s in manager.services.list(filters={"label": f"io.roomquake.run={run_id}"})}
        spec = {name.removeprefix(f"rq-{run_id}-"): s for name, s in services.items()}
        assert {"frontend-1", "api-1", "worker-1", "worker-2", "producer-1", "postgres-1", "queue-1", "proxy-1"} <= set(spec)
        # the project's file is bind-mounted, its aliases are on the overlay, a worker publishes nothing
        frontend = spec["frontend-1"]["TaskTemplate"]
        assert [(m["Type"], m["Target"], m.get("ReadOnly")) for m in frontend["ContainerSpec"]["Mounts"]] == [
            ("bind", "/etc/nginx/conf.d/default.conf", True)]
        postgres = spec["postgres-1"]["TaskTemplate"]
        assert {"postgres-1", "postgres", "database"} <= set(postgres["Networks"][0]["Aliases"])
        assert not spec["worker-1"].get("EndpointSpec", {}).get("Ports")
        # the build-context images were built here and loaded on both nodes (nothing can be pulled)
        nodes = {t["NodeID"] for name in services for t in manager.api.tasks(filters={"service": name})
                 if t["Status"]["State"] == "running"}
        assert len(nodes) == 2, nodes
        status = tools.roomquake("stack", "status")
        assert "frontend-1" in status.stdout and "worker-2" in status.stdout, status.stdout

        files = sorted(str(p) for p in (TASKS / "experiments").glob("*.yaml"))
        assert [Path(f).stem for f in files] == ["api-db-latency", "postgres-pause", "workers-loss"]
        done = tools.roomquake("run", "--attach", run_id, "--journal-dir", str(tmp_path), files[0], files[2],
                               check=False, timeout=1200)
        verdicts = [line for line in done.stdout.splitlines() if line.startswith(str(TASKS))]
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert len(verdicts) == 2 and all(": PASSED" in line for line in verdicts), verdicts
        # a game day on the same stack, and its report
        gameday = tools.roomquake("gameday", "--auto", "--attach", run_id, "--journal-dir", str(tmp_path / "gameday"),
                                  files[1], check=False, timeout=900)
        assert gameday.returncode == 0, gameday.stdout[-3000:] + gameday.stderr[-2000:]
        [report] = (tmp_path / "gameday").glob("*.html")
        assert "pause-postgres" in report.read_text() and "PASSED" in report.read_text()
    finally:
        tools.roomquake("stack", "down", check=False)
        try:
            assert list(run_resources(manager, run_id)) == []
        finally:
            manager.close()


@pytest.mark.timeout(900)
def test_pytest_collects_an_imported_stacks_experiment_on_swarm(local_cluster, compose_base, cluster_state, tmp_path):
    import os
    import subprocess
    import sys

    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path), "--roomquake-backend",
         "swarm", "--roomquake-report-dir", str(tmp_path / "pytest"), str(TASKS / "experiments" / "workers-loss.yaml")],
        cwd=tmp_path, env={**os.environ, "ROOMQUAKE_STATE_DIR": str(cluster_state)}, capture_output=True, text=True,
        timeout=800)
    assert collected.returncode == 0 and "1 passed" in collected.stdout, collected.stdout[-3000:]
    journal = json.loads(next((tmp_path / "pytest").glob("*.json")).read_text())
    assert journal["verdict"] == "passed" and journal["file"].endswith("workers-loss.yaml")
