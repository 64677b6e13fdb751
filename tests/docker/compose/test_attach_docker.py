"""A Compose project started by docker-compose, attached by its project name: container faults act on it and are
rolled back; link faults are refused with a hint; the project is left as it was found."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "compose"
TASKS = FIXTURES / "tasks"
PROJECT = "com.docker.compose.project"


def states(client, project: str) -> dict[str, str]:
    return {c.name: c.status for c in client.containers.list(all=True, filters={"label": f"{PROJECT}={project}"})}


def test_experiments_run_on_the_attached_project_and_leave_it_as_found(docker_engine, tasks_project, roomquake) -> None:
    before = states(docker_engine, tasks_project.name)
    assert len(before) == 7 and set(before.values()) == {"running"}, before
    experiments = [str(TASKS / "experiments" / f) for f in ("workers-loss.yaml", "postgres-pause.yaml")]
    done = roomquake("run", "--attach", f"compose:{tasks_project.name}", *experiments)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.stdout.count(": PASSED") == 2, done.stdout[-4000:]
    timeline = done.stderr  # the progress display
    assert f"attached to Compose project {tasks_project.name} (7 containers)" in timeline
    assert "fault kill [kill-workers] hit worker-1, worker-2" in timeline
    assert "fault pause [pause-postgres] rolled back" in timeline
    # every container is running again, the same ones (nothing created, nothing removed)
    assert states(docker_engine, tasks_project.name) == before


def test_link_faults_on_an_attached_project_are_refused_with_a_hint(tasks_project, roomquake) -> None:
    done = roomquake("run", "--attach", f"compose:{tasks_project.name}", str(TASKS / "experiments" / "api-db-latency.yaml"))
    assert done.returncode == 2
    problem = [line for line in done.stderr.splitlines() if "method[0].link" in line]
    assert len(problem) == 1 and "api-db-latency.yaml:" in problem[0], done.stderr
    assert "has no fault proxy on its connections: import it (roomquake stack import" in problem[0]
    assert "nothing was run" in done.stderr


def test_an_unknown_project_is_one_line_naming_the_running_ones(tasks_project, roomquake) -> None:
    done = roomquake("run", "--attach", "compose:no-such-project", str(TASKS / "experiments" / "workers-loss.yaml"))
    assert done.returncode != 0
    assert "no Compose project 'no-such-project' has containers on this engine" in done.stdout + done.stderr
    assert tasks_project.name in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def _answers_200(host: str, port: int, path: str, within_s: float) -> bool:
    """Polled: a connection the faults broke is replaced on the next request (a margin for a loaded machine)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as answer:
                if answer.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def test_every_server_fault_and_its_undo_on_the_project(docker_engine, tasks_project) -> None:
    from chaos.compose.attach import attach_project

    stack = attach_project(tasks_project.name, TASKS / "stack.yaml")
    assert sorted(i.name for i in stack.instances()) == [
        "api-1", "frontend-1", "postgres-1", "producer-1", "queue-1", "worker-1", "worker-2"]
    assert stack.links() == []

    stack.stop("worker-1")
    assert stack.instances("worker")[0].state == "exited"
    stack.start("worker-1")
    stack.restart("producer-1")
    assert {i.name: i.state for i in stack.instances()}["producer-1"] == "running"

    api = docker_engine.containers.get(stack.plan.instance("api-1").host)
    ip_before = {n: e["IPAddress"] for n, e in api.attrs["NetworkSettings"]["Networks"].items()}
    stack.disconnect("api-1")
    api.reload()
    assert api.attrs["NetworkSettings"]["Networks"] == {}
    stack.reconnect("api-1")
    api.reload()
    # the same networks; the same address too where the engine lets it be pinned (it usually hands it back anyway)
    assert set(api.attrs["NetworkSettings"]["Networks"]) == set(ip_before)
    assert "api" in next(iter(api.attrs["NetworkSettings"]["Networks"].values()))["Aliases"]  # found by name again

    db = docker_engine.containers.get(stack.plan.instance("postgres-1").host)
    limits = {k: db.attrs["HostConfig"][k] for k in ("CpuQuota", "CpuPeriod")}
    stack.squeeze("postgres-1", cpus=0.25)
    db.reload()
    assert db.attrs["HostConfig"]["CpuQuota"] == 25_000
    stack.unsqueeze("postgres-1")
    db.reload()
    assert db.attrs["HostConfig"]["CpuQuota"] in (0, -1, limits["CpuQuota"])

    # after all of it the API answers again, reached directly by the toolkit at its (possibly new) address. Not
    # /tasks/done: when the engine hands the API another address, its open PostgreSQL connections stall
    # (the app's own weakness, which a disconnect experiment would show).
    host, port = stack.address("api-1")
    assert _answers_200(host, port, "/healthz", within_s=30), "the API did not answer after the faults' undo"


def test_a_dead_runners_ledger_finds_the_project_from_its_own_compose_files(tasks_project) -> None:
    from chaos.compose.attach import attach_project

    stack = attach_project(tasks_project.name)  # no stack file: the project's Compose files, imported in memory
    assert stack.spec.name == tasks_project.name
    assert {i.service for i in stack.instances()} == {"api", "frontend", "postgres", "producer", "queue", "worker"}


def test_a_runner_killed_mid_fault_is_rolled_back_from_its_ledger(docker_engine, tasks_project, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    experiment = tmp_path / "freeze.yaml"
    experiment.write_text(f"title: killed while the database is paused\nstack: {TASKS / 'stack.yaml'}\n"
                          "method:\n  - {id: freeze, fault: pause, target: {service: postgres}}\n  - wait: 120s\n")
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "chaos", "run", "--attach", f"compose:{tasks_project.name}",
                             "--journal-dir", str(tmp_path), str(experiment)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 120
        seen = []
        for line in proc.stderr:  # the progress display
            seen.append(line)
            if "fault pause [freeze] hit postgres-1" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
    finally:
        proc.kill()
        proc.wait()
    db = f"{tasks_project.name}_postgres_1"
    assert docker_engine.containers.get(db).status == "paused"  # SIGKILL: nobody rolled it back
    # roomquake clean's first step, on this test's own ledgers only (its Docker sweep would also touch other
    # dead runs' resources on this shared engine)
    from chaos.run.ledger import sweep_dead_runs

    done = sweep_dead_runs(tmp_path / "state")
    assert any(f"undid 1 fault part(s) on stack compose:{tasks_project.name}" in line for line in done), done
    assert docker_engine.containers.get(db).status == "running"
    assert set(states(docker_engine, tasks_project.name).values()) == {"running"}  # nothing removed by clean


def test_packet_faults_act_on_the_attached_project_and_are_rolled_back(docker_engine, tasks_project, roomquake,
                                                                      tmp_path: Path) -> None:
    """packet_loss of every packet on the API's container: the API stops answering during the fault, answers again
    after it, and no rule is left in the container's namespace."""
    import os
    import subprocess
    import threading

    import pytest

    from chaos.compose.attach import attach_project

    if os.geteuid() != 0:
        pytest.skip("packet faults add iptables rules inside containers' namespaces: root only")
    stack = attach_project(tasks_project.name, TASKS / "stack.yaml")
    host, port = stack.address("api-1")
    assert _answers_200(host, port, "/healthz", within_s=30)
    experiment = tmp_path / "drop.yaml"
    experiment.write_text(f"title: every packet of the API dropped\nstack: {TASKS / 'stack.yaml'}\n"
                          "method:\n  - {id: drop, fault: packet_loss, probability: 1.0, target: {service: api}}\n"
                          "  - wait: 6s\n")
    answers: list[tuple[float, bool]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=1) as answer:
                    answers.append((time.monotonic(), answer.status == 200))
            except OSError:
                answers.append((time.monotonic(), False))
            time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        done = roomquake("run", "--attach", f"compose:{tasks_project.name}", "--journal-dir", str(tmp_path),
                         str(experiment))
    finally:
        stop.set()
        poller.join(timeout=10)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "fault packet_loss [drop] hit api-1" in done.stderr and "fault packet_loss [drop] rolled back" in done.stderr
    assert any(not ok for _, ok in answers), "the API kept answering while every packet was dropped"
    assert _answers_200(host, port, "/healthz", within_s=30), "the API did not answer after the rollback"
    api = docker_engine.containers.get(stack.plan.instance("api-1").host)
    api.reload()
    listed = subprocess.run(["nsenter", "-t", str(api.attrs["State"]["Pid"]), "-n", "iptables", "-S"],
                            capture_output=True, text=True, check=True).stdout
    assert '"rq.' not in listed and " rq." not in listed, listed  # every rule of ours carries an rq.<run>.<step> comment

    # a partition needs both sides' namespaces, and no fault proxy (the attached project has none)
    experiment.write_text(f"title: the API cut off from its database\nstack: {TASKS / 'stack.yaml'}\n"
                          "method:\n  - {id: cut, fault: partition, target: {service: api}, from: {service: postgres}}\n"
                          "  - wait: 2s\n")
    done = roomquake("run", "--attach", f"compose:{tasks_project.name}", "--journal-dir", str(tmp_path), str(experiment))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "fault partition [cut] hit api-1, postgres-1" in done.stderr, done.stderr[-3000:]
    assert "fault partition [cut] rolled back" in done.stderr
    assert _answers_200(host, port, "/healthz", within_s=30), "the API did not answer after the partition's rollback"
