"""A local bring-up whose owner is SIGKILLed before it recorded the run: clean / stack down --all end its processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.stack import registry
from chaos.stack.bringup import attach_record
from chaos.stack.sweep import sweep_dead_stacks
from chaos.stack.errors import StackError
from chaos.stack.local import _proc_state

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"

# Brings the stack up but stops, forever, once every instance is healthy and
# before the finished record is written: the owner is killed in the very
# window where only the pending record knows the processes.
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
bringup.start_stack(sys.argv[1], backend="local", scale={"edge": 2, "supervisor": 1, "host": 1, "crowd": 1}, profile="ci")
"""


def _alive(procs: dict) -> list[str]:
    return [name for name, p in procs.items() if _proc_state(p["pid"], p["start"]) != "exited"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # No Docker engine to reach: the local tier must not sweep the host's Docker.
    env = {**os.environ, "DOCKER_HOST": f"unix://{ROOT}/no-such-docker.sock"}
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env=env)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("verb", [("clean",), ("stack", "down", "--all")], ids=" ".join)
def test_killed_bring_up_leaves_no_process(state_dir: Path, verb: tuple[str, ...]) -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(STACK)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    procs: dict = {}
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "all started"
        (record,) = registry.records()
        assert record["pending"] and record["owner"]["io.roomquake.owner-pid"] == str(owner.pid)
        procs = record["state"]["procs"]
        assert len(procs) >= 6 and _alive(procs) == list(procs)  # the proxy and every instance, all recorded
        assert sweep_dead_stacks() == []  # its owner is alive: never touched
        with pytest.raises(StackError, match="not up yet"):
            attach_record(record["run_id"])
        owner.kill()  # SIGKILL: no finally, no teardown
        owner.wait()
        assert _alive(procs) == list(procs)  # orphans, still running
        if verb == ("clean",):
            preview = _cli("clean", "--dry-run")
            assert f"would end {len(procs)} process group(s)" in preview.stdout, preview.stdout + preview.stderr
            assert _alive(procs) == list(procs)  # --dry-run ended nothing
        result = _cli(*verb)
        assert result.returncode == 0, result.stdout + result.stderr
        assert _alive(procs) == []
        assert not list(state_dir.glob("*.json")) and not (state_dir / record["run_id"]).exists()
        if verb == ("clean",):
            assert f"ended {len(procs)} process group(s)" in result.stdout
        assert sweep_dead_stacks() == []
    finally:  # whatever a failed assertion left
        owner.kill()
        owner.wait()
        for p in procs.values():
            if _proc_state(p["pid"], p["start"]) != "exited":
                os.killpg(p["pid"], signal.SIGKILL)
