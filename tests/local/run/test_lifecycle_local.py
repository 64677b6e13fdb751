"""Nothing left behind, nothing hangs (issue 18) on real processes: restarted instances in the record,
the next run finishing a killed one, one Ctrl-C for the whole command, exit 3 from the first instant,
faults due together started together, crashes restarted as on docker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.labels import proc_stat
from roomquake_testutil import until
from chaos.stack import registry, start_stack
from chaos.stack.local import live_groups

from .conftest import ROOT, STACK

SMALL = "{edge: 2, supervisor: 2, host: 2, crowd: 1}"


def experiment(tmp_path: Path, name: str, method: str, title: str = "lifecycle") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""
title: {title} {name}
stack: {STACK}
profile: ci
scale: {SMALL}
seed: 5
load: {{room: launch, listeners: 10, ramp: 500ms}}
settle: 20s
steady_state:
  - {{probe: room.state, expect: live}}
method:
{method}
""")
    return path


def processes_of(ports: set[int]) -> list[int]:
    """Every process on this machine whose environment says it listens on one of ``ports`` (RQ_PORT)."""
    wanted = {f"RQ_PORT={p}\0".encode() for p in ports}
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        fields = proc_stat(int(pid))  # [] once gone
        if fields and fields[0] != "Z" and any(w in env for w in wanted):
            found.append(int(pid))
    return found


def journals(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{ROOT}/no-such-docker.sock"}  # the local tier never sweeps Docker
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


@pytest.mark.timeout(240)
def test_restarted_instances_are_recorded_and_nothing_survives_stack_down(tmp_path, state_dir, run_process) -> None:
    """Item 1: kill ... for: and restart on an attached stack, the store restarted by hand, then SIGKILL the runner."""
    stack = start_stack(STACK, backend="local", scale={"edge": 2, "supervisor": 2, "host": 2, "crowd": 1},
                        profile="ci", keep=True)
    ports = {i.port for i in stack.plan.instances}
    try:
        old_state = stack.backend.procs["state-1"]["pid"]
        stack.kill("state-1")
        stack.start("state-1")  # a state store restarted through RunningStack.start
        recorded = registry.load(stack.run_id)["state"]["procs"]["state-1"]["pid"]
        assert recorded == stack.backend.procs["state-1"]["pid"] != old_state  # in the record at once
        path = experiment(tmp_path, "restarts", """
  - {id: lose, fault: kill, target: {instance: edge-1}, for: 1s}
  - {id: again, fault: restart, target: {instance: supervisor-1}}
  - wait: 120s
""")
        run = run_process(["--attach", stack.run_id, "--journal-dir", str(tmp_path), str(path)])
        run.wait_for("rolled back", timeout=150)  # edge-1 respawned by the runner, supervisor-1 restarted
        time.sleep(0.5)
        saved = registry.load(stack.run_id)
        record = saved["state"]["procs"]
        ports |= {i["port"] for i in saved["plan"]["instances"]}  # the attached run renewed the stack: new ports
        run.kill()  # SIGKILL: no rollback, no teardown
        alive = processes_of(ports)
        assert alive, "the stack should still run"
        for name in ("edge-1", "supervisor-1"):  # the respawned ones are in the record, with their new pids
            assert record[name]["pid"] in {os.getpgid(p) for p in alive}, name
        down = cli("stack", "down", stack.run_id)
        assert down.returncode == 0, down.stdout + down.stderr
        assert processes_of(ports) == []  # nothing survives stack down
    finally:
        for pid in processes_of(ports):
            os.kill(pid, signal.SIGKILL)
        registry.remove(stack.run_id)


# Brings a stack up and hangs once every instance is healthy, before the run is recorded as finished.
OWNER = """
import sys, time
from chaos.stack import bringup
real, calls = bringup._wait_healthy, []
def wait_then_hang(stack, impl, members, *rest):
    real(stack, impl, members, *rest)
    calls.append(members)
    if len(calls) == 2:
        print("all started", flush=True)
        time.sleep(600)
bringup._wait_healthy = wait_then_hang
bringup.start_stack(sys.argv[1], backend="local", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 1}, profile="ci")
"""


@pytest.mark.timeout(240)
def test_the_next_run_ends_a_half_up_local_stack(tmp_path, state_dir) -> None:
    """Item 4: SIGKILL during bring-up; the next run (not clean) ends the half-up stack's processes."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(STACK)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "all started"
        (record,) = registry.records()
        groups = {int(p["pid"]) for p in record["state"]["procs"].values()}
        owner.kill()
        owner.wait()
        assert live_groups(groups) == groups  # orphans
        path = experiment(tmp_path, "next", "  - wait: 500ms")
        done = cli("run", "--backend", "local", "--journal-dir", str(tmp_path / "j"), str(path), timeout=200)
        assert done.returncode == 0, done.stdout + done.stderr
        assert live_groups(groups) == set()
        (journal,) = journals(tmp_path / "j")
        notes = [e["message"] for e in journal["events"] if e["kind"] == "note"]
        assert any(record["run_id"] in n and "process group(s)" in n for n in notes), notes
    finally:
        owner.kill()
        owner.wait()
        for pgid in live_groups(groups if "groups" in locals() else set()):
            os.killpg(pgid, signal.SIGKILL)


@pytest.mark.timeout(240)
def test_one_ctrl_c_ends_the_whole_command(tmp_path, state_dir, run_process) -> None:
    """Item 5: `run a.yaml b.yaml` interrupted during a: a rolls back, b never starts, exit 3."""
    a = experiment(tmp_path, "a", "  - {id: freeze, fault: pause, target: {service: supervisor, count: 1}}\n  - wait: 120s")
    b = experiment(tmp_path, "b", "  - wait: 1s")
    run = run_process(["--backend", "local", "--journal-dir", str(tmp_path / "j"), str(a), str(b)])
    run.wait_for("fault pause [freeze] hit")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish(timeout=90) == 3
    (journal,) = journals(tmp_path / "j")  # b was never run
    assert journal["verdict"] == "aborted" and journal["file"] == str(a)
    assert any(f"not run: {b}" in line for line in run.lines), run.lines
    assert not list(state_dir.glob("*.json"))


def _catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (the SigCgt mask of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        caught = next(line for line in status if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (sig - 1)))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_before_the_stack_starts_exits_3_with_a_journal(tmp_path, state_dir, run_process, sig) -> None:
    """Item 5: the handler is there from the first instant; a run that has not started yet aborts at once."""
    path = experiment(tmp_path, "early", "  - wait: 1s")
    run = run_process(["--backend", "local", "--journal-dir", str(tmp_path / "j"), str(path)])
    # The first instant is roomquake's first line (chaos/__init__.py takes SIGINT and SIGTERM over); before
    # it, Python's own start-up answers a signal, however long a loaded machine makes that. Python catches
    # SIGINT by itself, never SIGTERM: SIGTERM caught means ours are in, and the command line is still loading.
    until(lambda: _catches(run.proc.pid, signal.SIGTERM), timeout=60, what="roomquake's signal handlers",
          interval=0.005)
    run.proc.send_signal(sig)
    assert run.finish(timeout=60) == 3, run.lines
    (journal,) = journals(tmp_path / "j")
    assert journal["verdict"] == "aborted" and signal.Signals(sig).name in journal["reason"]
    assert not list(state_dir.glob("*.json"))


@pytest.mark.timeout(180)
def test_faults_due_together_start_together_locally(tmp_path, state_dir) -> None:
    """Issue 20 item 1: a parallel group's faults start within the bound (documented 50 ms; asserted with margin)."""
    path = experiment(tmp_path, "together", """
  - parallel:
      - {id: kill-a, fault: kill, target: {instance: edge-1}}
      - {id: kill-b, fault: kill, target: {instance: edge-2}}
      - {id: slow, fault: latency, link: crowd->edge, latency: 10ms}
  - wait: 500ms""")
    done = cli("run", "--backend", "local", "--journal-dir", str(tmp_path / "j"), str(path), timeout=170)
    (journal,) = journals(tmp_path / "j")
    assert done.returncode == 1 or done.returncode == 0, done.stdout + done.stderr
    (group,) = journal["parallel"]
    assert group["steps"] == ["kill-a", "kill-b", "slow"]
    assert group["start_spread_s"] <= 0.25, group
    began = [e["began"] for e in journal["events"] if e["kind"] == "fault_injected"]
    assert max(began) - min(began) <= 0.25


@pytest.mark.timeout(180)
def test_a_crashed_instance_is_restarted_and_a_killed_one_is_not(state_dir) -> None:
    """Item 8: restart: on-failure, as the docker backend's engine policy (see tests/docker/stack)."""
    stack = start_stack(STACK, backend="local", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 1}, profile="ci")
    try:
        keeper = stack.backend.procs["control-1"]["pid"]
        with open(f"/proc/{keeper}/task/{keeper}/children") as f:
            (service,) = [int(p) for p in f.read().split()]
        os.kill(service, signal.SIGKILL)  # the program dies by itself (as by the OOM killer), not by a fault
        from chaos.stack.health import check

        spec = stack.spec.services["control"].health
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            os.path.exists(f"/proc/{service}") is False and check(spec, *stack.address("control-1"))
        ):
            time.sleep(0.1)
        assert check(spec, *stack.address("control-1")), "a crashed control-1 is started again"
        assert stack.instances("control")[0].state == "running" and stack.backend.crashes("control-1") == 1
        stack.kill("control-1")  # a kill fault: stays down, as `docker kill` does
        time.sleep(2)
        assert stack.instances("control")[0].state == "exited"
    finally:
        stack.down()
        assert stack.leftovers() == []


@pytest.mark.timeout(600)
def test_interrupts_at_random_instants_leave_nothing_locally(tmp_path) -> None:
    """Item 2: a small seeded sample of bench/interrupts.py (its full runs are reported in README)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import interrupts  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    with open(tmp_path / "trials.txt", "w") as out:
        trials = interrupts.run_trials("local", 4, seed=5, bound=60, out=out)
    assert all(t.ok for t in trials), (tmp_path / "trials.txt").read_text()
