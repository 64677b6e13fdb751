"""`roomquake clean` on the real engine: dead runs go (even after SIGKILL), nothing else does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from chaos.clean import clean
from chaos.stack.containers import ContainerSpec, run_container, run_network, run_volume
from chaos.images import ImageSet
from chaos.labels import KEEP, RUN, RunIdentity

# A run that creates a network, a volume and a container (left paused, as by
# a pause fault), says its run id, and is then killed with SIGKILL before it
# can clean up.
VICTIM = """
import sys, time
from chaos.engine import connect
from chaos.labels import RunIdentity
from chaos.stack.containers import ContainerSpec, run_container, run_network, run_volume
client, identity = connect(), RunIdentity()
spec = ContainerSpec(image=sys.argv[1], name="victim", service="edge", instance="edge-1", command=["sleep", "600"])
with run_network(client, identity, pinnable=False) as net, run_volume(client, identity):
    with run_container(client, identity, net, spec) as victim:
        victim.pause()  # killed mid-fault: clean must cope with a paused container too
        print(identity.run_id, flush=True)
        time.sleep(600)
"""


def _resources(client, run_id: str) -> dict[str, int]:
    query = {"label": f"{RUN}={run_id}"}
    return {
        "containers": len(client.containers.list(all=True, filters=query)),
        "networks": len(client.networks.list(filters=query)),
        "volumes": len(client.volumes.list(filters=query)),
    }


@pytest.fixture
def killed_run(docker_engine, stack_images: ImageSet) -> Iterator[str]:
    """Run id of a run whose process died by SIGKILL, leaving its resources behind."""
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, stack_images.base.ref], stdout=subprocess.PIPE, text=True
    )
    assert victim.stdout is not None
    run_id = victim.stdout.readline().strip()
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert run_id, "the victim run did not start"
    assert _resources(docker_engine, run_id) == {"containers": 1, "networks": 1, "volumes": 1}
    yield run_id
    clean(docker_engine, include_live=True, only_runs={run_id})  # whatever a failed test left


@pytest.fixture
def live_run(docker_engine, stack_images: ImageSet) -> Iterator[RunIdentity]:
    """This process's own run: a network, a volume, a running container."""
    identity = RunIdentity()
    spec = ContainerSpec(image=stack_images.base.ref, name="alive", service="edge", instance="edge-1", command=["sleep", "600"])
    with ExitStack() as stack:
        net = stack.enter_context(run_network(docker_engine, identity, pinnable=False))
        stack.enter_context(run_volume(docker_engine, identity))
        stack.enter_context(run_container(docker_engine, identity, net, spec))
        yield identity


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos", "clean", *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def test_clean_removes_a_sigkilled_run_and_nothing_else(docker_engine, killed_run: str, live_run: RunIdentity) -> None:
    dead_owner = RunIdentity(pid=2**22 + 17)  # beyond pid_max: a pid that cannot be alive
    kept = docker_engine.networks.create(f"rq-test-kept-{os.getpid()}", labels={**dead_owner.labels(), KEEP: "1"})
    unlabelled = docker_engine.networks.create(f"rq-test-unlabelled-{os.getpid()}")
    try:
        result = _cli()
        assert result.returncode == 0, result.stderr
        assert f"removed run {killed_run} (dead" in result.stdout
        assert _resources(docker_engine, killed_run) == {"containers": 0, "networks": 0, "volumes": 0}
        assert _resources(docker_engine, live_run.run_id) == {"containers": 1, "networks": 1, "volumes": 1}
        names = {n.name for n in docker_engine.networks.list()}
        assert kept.name in names and unlabelled.name in names
    finally:
        kept.remove()
        unlabelled.remove()


def test_dry_run_removes_nothing(docker_engine, killed_run: str) -> None:
    result = _cli("--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"would remove run {killed_run}" in result.stdout
    assert _resources(docker_engine, killed_run) == {"containers": 1, "networks": 1, "volumes": 1}


def test_all_needs_confirmation_without_a_terminal(docker_engine, live_run: RunIdentity) -> None:
    result = _cli("--all")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("roomquake: error: --all would remove resources of") and "--yes" in result.stderr
    assert _resources(docker_engine, live_run.run_id) == {"containers": 1, "networks": 1, "volumes": 1}


def test_all_removes_live_runs_too(docker_engine, stack_images: ImageSet) -> None:
    identity = RunIdentity()
    spec = ContainerSpec(image=stack_images.base.ref, name="alive", service="edge", instance="edge-1", command=["sleep", "600"])
    with run_network(docker_engine, identity, pinnable=False) as net, run_container(docker_engine, identity, net, spec):
        report = clean(docker_engine, include_live=True, only_runs={identity.run_id})
        assert {r.kind for r in report.removed} == {"container", "network"} and not report.failed
        assert _resources(docker_engine, identity.run_id) == {"containers": 0, "networks": 0, "volumes": 0}


KILLED_MID_FAULT = """
title: runner killed with SIGKILL mid-fault on an attached docker stack
stack: {stack}
scale: {{edge: 1, supervisor: 1, host: 1, crowd: 1}}
steady_state: [{{probe: supervisor.running, expect: "== 1"}}]
method:
  - {{id: slow, fault: latency, link: edge->state, latency: 50ms, direction: both}}
  - {{id: freeze, fault: pause, target: {{service: supervisor}}}}
  - wait: 120s
"""


@pytest.mark.timeout(400)
def test_clean_alone_finishes_a_sigkilled_runners_rollback(docker_engine, stack_images: ImageSet, tmp_path,
                                                            monkeypatch) -> None:
    """Toxics removed and the paused container resumed by `roomquake clean`, no next run; the live stack stays."""
    import time
    from pathlib import Path

    from chaos.stack import start_stack

    root = Path(__file__).resolve().parents[3]
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(state))  # also for the runner and clean subprocesses
    experiment = tmp_path / "killed.yaml"
    experiment.write_text(KILLED_MID_FAULT.format(stack=root / "docker" / "stack.yaml"))
    stack = start_stack(root / "docker" / "stack.yaml", backend="docker", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 1})
    runner = subprocess.Popen([sys.executable, "-m", "chaos", "run", "--attach", stack.run_id, "--journal-dir", str(tmp_path),
                               str(experiment)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert runner.stdout is not None
        seen = []
        for line in runner.stdout:  # the runner prints as it goes; its pause is in place once it says so
            seen.append(line)
            if "fault pause [freeze] hit" in line:
                break
        assert runner.poll() is None, "".join(seen)
        runner.kill()  # SIGKILL: no rollback
        runner.wait()
        proxy = stack.proxy_client()
        toxics = lambda: sum(len(proxy.toxics(name)) for name in proxy.proxies())  # noqa: E731
        from chaos.stack.bringup import attach_record

        renewed = attach_record(stack.run_id)  # the attached run renewed the stack: its containers are new
        assert toxics() > 0 and "paused" in {i.state for i in renewed.instances("supervisor")}
        result = _cli()
        assert result.returncode == 0, result.stdout + result.stderr
        assert "finished rollback of dead runner" in result.stdout and "undid" in result.stdout, result.stdout
        assert toxics() == 0
        deadline = time.monotonic() + 10  # docker reports the unpause a moment later
        while {i.state for i in renewed.instances()} != {"running"} and time.monotonic() < deadline:
            time.sleep(0.1)
        assert {i.state for i in renewed.instances()} == {"running"}  # resumed; the live stack itself is kept
        assert not list(state.glob("runner-*.json"))
    finally:
        runner.kill()
        runner.wait()
        stack.down()
