"""Item 7 on real processes: SIGINT mid-fault rolls everything back; SIGKILL leftovers are swept (by clean or the next run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.run.ledger import sweep_dead_runs
from chaos.stack import down, registry, start_stack
from chaos.stack.bringup import attach_record
from chaos.stack.local import _proc_state

from .conftest import ROOT, STACK

EXPERIMENT = f"""
title: interrupt me in the middle of a fault
stack: {STACK}
profile: ci
scale: {{edge: 2, supervisor: 2, host: 2, crowd: 1}}
seed: 9
load: {{room: launch, listeners: 10, ramp: 500ms}}
settle: 20s
steady_state:
  - {{probe: room.state, expect: live}}
method:
  - {{id: slow, fault: latency, link: edge->state, latency: 50ms, direction: both}}
  - {{id: cut, fault: down, link: crowd->edge}}
  - {{id: freeze, fault: pause, target: {{service: supervisor, count: 1}}}}
  - wait: 120s
"""


def clean_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`roomquake clean` with no Docker engine to reach: the local tier must not sweep the host's Docker."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{ROOT}/no-such-docker.sock"}
    return subprocess.run([sys.executable, "-m", "chaos", "clean", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)


def write(tmp_path: Path) -> Path:
    path = tmp_path / "interrupt.yaml"
    path.write_text(EXPERIMENT)
    return path


def proxy_state(stack) -> tuple[int, list[str]]:
    client = stack.proxy_client()
    proxies = client.proxies()
    toxics = sum(len(client.toxics(name)) for name in proxies)
    return toxics, sorted(name for name, info in proxies.items() if not info.enabled)


def journal_of(lines: list[str]) -> dict:
    path = next(line.split("journal: ", 1)[1] for line in lines if "journal: " in line)
    return json.loads(Path(path.strip()).read_text())


@pytest.mark.timeout(150)
def test_sigint_brought_up_stack_aborts_and_leaves_nothing(tmp_path, state_dir, run_process) -> None:
    run = run_process(["--backend", "local", "--journal-dir", str(tmp_path), str(write(tmp_path))])
    run.wait_for("fault pause [freeze] hit")
    record = next(r for r in registry.records())
    procs = record["state"]["procs"]
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 3
    journal = journal_of(run.lines)
    assert journal["verdict"] == "aborted" and "SIGINT" in journal["reason"]
    rolled = {e["step"]: e for e in journal["events"] if e["kind"] == "fault_rolled_back"}
    assert set(rolled) == {"slow", "cut", "freeze"} and all(e["ok"] for e in rolled.values())
    for name, proc in procs.items():  # every process of the stack is gone
        assert _proc_state(proc["pid"], proc["start"]) == "exited", name
    assert not list(state_dir.glob("*.json"))  # no registry record, no ledger left


@pytest.fixture
def attached_stack(state_dir):
    stack = start_stack(STACK, backend="local", scale={"edge": 2, "supervisor": 2, "host": 2, "crowd": 1}, profile="ci")
    try:
        yield stack
    finally:
        down(stack.run_id)  # as recorded: an attached run renews the stack (new processes)


@pytest.mark.timeout(150)
def test_sigint_attached_removes_toxics_and_resumes(tmp_path, attached_stack, run_process) -> None:
    run = run_process(["--attach", attached_stack.run_id, "--journal-dir", str(tmp_path), str(write(tmp_path))])
    run.wait_for("fault pause [freeze] hit")
    toxics, disabled = proxy_state(attached_stack)
    assert toxics == 2 and disabled == ["crowd->edge-1", "crowd->edge-2"]
    assert "paused" in {i.state for i in attach_record(attached_stack.run_id).instances("supervisor")}
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 3
    assert journal_of(run.lines)["verdict"] == "aborted"
    assert proxy_state(attached_stack) == (0, [])
    assert {i.state for i in attach_record(attached_stack.run_id).instances()} == {"running"}  # resumed, and left up


@pytest.mark.timeout(150)
def test_sigkill_leftovers_are_undone_by_clean_alone(tmp_path, attached_stack, run_process) -> None:
    run = run_process(["--attach", attached_stack.run_id, "--journal-dir", str(tmp_path), str(write(tmp_path))])
    run.wait_for("fault pause [freeze] hit")
    run.kill()  # SIGKILL: no finally, no rollback
    assert proxy_state(attached_stack)[0] == 2
    assert "paused" in {i.state for i in attach_record(attached_stack.run_id).instances("supervisor")}
    preview = clean_cli("--dry-run")
    assert preview.returncode == 0 and "would undo 5 fault part(s)" in preview.stdout, preview.stdout + preview.stderr
    assert proxy_state(attached_stack)[0] == 2  # --dry-run changed nothing
    done = clean_cli()  # roomquake clean, no next run
    assert done.returncode == 0 and "undid 5 fault part(s)" in done.stdout, done.stdout + done.stderr
    assert proxy_state(attached_stack) == (0, [])
    assert {i.state for i in attach_record(attached_stack.run_id).instances()} == {"running"}  # resumed, and left up
    assert sweep_dead_runs() == []  # swept once


@pytest.mark.timeout(150)
def test_sigkill_brought_up_stack_is_taken_down_by_the_next_sweep(tmp_path, state_dir, run_process) -> None:
    run = run_process(["--backend", "local", "--journal-dir", str(tmp_path), str(write(tmp_path))])
    run.wait_for("fault pause [freeze] hit")
    procs = next(r for r in registry.records())["state"]["procs"]
    run.kill()
    assert any(_proc_state(p["pid"], p["start"]) != "exited" for p in procs.values())  # orphans still run
    done = sweep_dead_runs()
    assert len(done) == 1 and "took down stack" in done[0]
    for name, proc in procs.items():
        assert _proc_state(proc["pid"], proc["start"]) == "exited", name
