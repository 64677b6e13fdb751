"""Issue 19 on the real engine: services run under the fork server in their containers (the engine still sees
every crash and stop), a reused stack is renewed in place and verified, nothing is published, teardown is complete."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from chaos import labels as L
from chaos.authoring.reset import reset
from chaos.stack import start_stack
from chaos.stack.docker import FORKSERVER_ONE

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"
SMALL = {"edge": 1, "supervisor": 1, "host": 1, "crowd": 1}


@pytest.fixture
def small(docker_engine, stack_images, tmp_path, monkeypatch):
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(tmp_path / "state"))
    stack = start_stack(STACK, backend="docker", scale=SMALL, profile="ci")
    try:
        yield stack
    finally:
        stack.down()
        assert stack.leftovers() == []


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


@pytest.mark.timeout(400)
def test_a_reused_stack_is_renewed_in_place_under_the_fork_server_and_verified(small, docker_engine) -> None:
    containers = {c.labels[L.INSTANCE]: c for c in docker_engine.containers.list(
        all=True, filters={"label": f"{L.RUN}={small.run_id}"})}
    for name, c in containers.items():
        wrapped = c.attrs["Config"]["Cmd"][:len(FORKSERVER_ONE)] == FORKSERVER_ONE
        assert wrapped == (name not in ("state-1",)), name  # Python services preload; redis runs as it is
        assert not c.attrs["HostConfig"]["PortBindings"]  # nothing published
    init = containers["edge-1"].attrs["State"]["Pid"]
    (server,) = children(init)
    (instance,) = children(server)
    small.load("start", room="launch", listeners=6, ramp_s=0.5)
    deadline = time.monotonic() + 30
    while (small.probe("crowd.connected") or 0) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    done = reset(small, scale=SMALL, profile="ci")
    assert "forked anew in their containers" in done[1] and done[-1].startswith("reset verified"), done
    after = {c.labels[L.INSTANCE]: c.id for c in docker_engine.containers.list(
        all=True, filters={"label": f"{L.RUN}={small.run_id}"})}
    assert after["edge-1"] == containers["edge-1"].id  # the same container ...
    assert after["state-1"] != containers["state-1"].id  # ... but the store's is new (its kept data goes with it)
    assert children(init) == [server] and children(server) != [instance]  # ... with a fresh instance in it
    assert small.probe("crowd.connected") == 0 and small.probe("edge.listeners") == 0


@pytest.mark.timeout(300)
def test_the_engine_sees_a_crash_of_the_instance_under_the_fork_server(small) -> None:
    managed = small.backend.managed["edge-1"]
    managed.container.reload()
    (server,) = children(managed.container.attrs["State"]["Pid"])
    (instance,) = children(server)
    os.kill(instance, signal.SIGKILL)  # the instance dies by itself: its server leaves with 137, the policy restarts
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and small.backend.crashes("edge-1") < 1:
        time.sleep(0.1)
    assert small.backend.crashes("edge-1") == 1
    small.stop("edge-1")  # SIGTERM passed on by the server: the container stops and stays stopped
    time.sleep(2)
    assert small.instances("edge")[0].state == "exited"
    small.start("edge-1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not small.healthy("edge-1"):
        time.sleep(0.1)
    assert small.healthy("edge-1")
