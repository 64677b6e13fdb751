"""Issue 18 and 20 on the real engine: nothing answers from the host without the run's secrets (nothing is
published; the toolkit reaches containers at their pinned addresses), a crash is restarted as locally, faults due together start together, the attach sequence
gives a fresh stack's verdicts, and interrupts at random instants leave nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chaos.stack import start_stack
from chaos.stack.health import check

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"
EXPERIMENTS = ROOT / "experiments"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(path))
    return path


@pytest.fixture
def small(docker_engine, stack_images, state):
    stack = start_stack(STACK, backend="docker", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 1}, profile="ci")
    try:
        yield stack
    finally:
        stack.down()
        assert stack.leftovers() == []


def bridge_ip(stack, name: str) -> str:
    managed = stack.backend.managed[name]
    managed.container.reload()
    (net,) = managed.container.attrs["NetworkSettings"]["Networks"].values()
    return str(net["IPAddress"])


def redis_says(host: str, port: int, command: bytes = b"PING\r\n") -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(64)


@pytest.mark.timeout(300)
def test_from_the_host_only_what_holds_the_runs_secrets_gets_in(small) -> None:
    """Item 7: the store and the proxy API on their bridge addresses demand the run's password / token."""
    state_ip, proxy_ip = bridge_ip(small, "state-1"), bridge_ip(small, "proxy-1")
    assert redis_says(state_ip, 6379).startswith(b"-NOAUTH")  # the bridge address: authentication required
    host, port = small.address("state-1")
    assert (host, port) == (state_ip, 6379)  # the toolkit reaches it there: nothing is published on the host
    spec = small.spec.services["state"].health
    assert check(spec, host, port, password=small.secrets["secret"])  # the toolkit's health check authenticates
    assert not check(spec, host, port, password="wrong")
    for url in (f"http://{proxy_ip}:8474/proxies", f"{small.proxy_url}/proxies"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)
        assert refused.value.code == 401, url
    with small.proxy_client() as client:  # every client the toolkit makes carries the token
        assert set(client.proxies()) == {p.name for p in small.links()}
    registry_file = Path(os.environ["ROOMQUAKE_STATE_DIR"]) / f"{small.run_id}.json"
    assert oct(registry_file.stat().st_mode & 0o777) == "0o600"  # the record keeps the secrets; owner only


@pytest.mark.timeout(300)
def test_a_crashed_container_is_restarted_and_a_killed_one_is_not(small) -> None:
    """Item 8: the engine's on-failure policy; the same outcome as the local keeper (tests/local/run)."""
    managed = small.backend.managed["control-1"]
    managed.container.reload()
    init = managed.container.attrs["State"]["Pid"]
    with open(f"/proc/{init}/task/{init}/children") as f:
        (service,) = [int(p) for p in f.read().split()]
    os.kill(service, signal.SIGKILL)  # the program dies by itself (as by the OOM killer), not `docker kill`
    spec = small.spec.services["control"].health
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and small.backend.crashes("control-1") < 1:
        time.sleep(0.1)
    while time.monotonic() < deadline and not check(spec, *small.address("control-1")):
        time.sleep(0.1)
    assert small.backend.crashes("control-1") == 1 and check(spec, *small.address("control-1"))
    small.kill("control-1")  # a kill fault: the policy does not apply, as locally
    time.sleep(2)
    assert small.instances("control")[0].state == "exited"


def roomquake(*args: str, env: dict[str, str], timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(300)
def test_faults_due_together_start_together_on_docker(docker_engine, stack_images, state, tmp_path) -> None:
    """Issue 20 item 1: two kills and a toxic of one parallel group (they were 0.30-0.46 s apart before)."""
    path = tmp_path / "together.yaml"
    path.write_text(f"""
title: two edges lost together
stack: {STACK}
profile: ci
scale: {{edge: 3, supervisor: 2, host: 2, crowd: 1}}
seed: 1
load: {{room: launch, listeners: 10, ramp: 500ms}}
settle: 30s
steady_state:
  - {{probe: room.state, expect: live}}
method:
  - parallel:
      - {{id: kill-a, fault: kill, target: {{instance: edge-1}}}}
      - {{id: kill-b, fault: kill, target: {{instance: edge-2}}}}
      - {{id: slow, fault: latency, link: crowd->edge, latency: 10ms}}
  - wait: 500ms
""")
    done = roomquake("run", "--backend", "docker", "--journal-dir", str(tmp_path / "j"), str(path),
                     env=dict(os.environ))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (journal,) = [json.loads(p.read_text()) for p in (tmp_path / "j").glob("*.json")]
    (group,) = journal["parallel"]
    assert group["start_spread_s"] <= 0.25, group  # documented bound 50 ms; margin for a loaded machine


@pytest.mark.timeout(900)
def test_the_attach_sequence_gives_the_fresh_verdicts_on_docker(docker_engine, stack_images, state, tmp_path) -> None:
    """Issue 20 item 2, the sequence as reported: stack up; run --attach latest edge-loss; gameday --attach latest --auto no-flap."""
    env = dict(os.environ)
    up = roomquake("stack", "up", "--backend", "docker", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        run = roomquake("run", "--attach", "latest", "--journal-dir", str(tmp_path / "j"),
                        str(EXPERIMENTS / "edge-loss.yaml"), env=env)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        gameday = roomquake("gameday", "--attach", "latest", "--auto", "--journal-dir", str(tmp_path / "j"),
                            str(EXPERIMENTS / "no-flap.yaml"), env=env)
        assert gameday.returncode == 0, gameday.stdout[-3000:] + gameday.stderr[-2000:]
        journals = {Path(j["file"]).stem: j for j in (json.loads(p.read_text()) for p in (tmp_path / "j").glob("*.json"))}
        assert journals["edge-loss"]["verdict"] == journals["no-flap"]["verdict"] == "passed"
        assert all("reset verified" in " ".join(j["reset"]) for j in journals.values())
        assert "HOST_GRACE=3s" in " ".join(journals["edge-loss"]["reset"])
    finally:
        down = roomquake("stack", "down", "--all", env=env)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.timeout(900)
def test_interrupts_at_random_instants_leave_nothing_on_docker(docker_engine, stack_images, tmp_path) -> None:
    """Item 2: a small seeded sample of bench/interrupts.py (its full runs are reported in README)."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import interrupts  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(ROOT / "bench"))
    with open(tmp_path / "trials.txt", "w") as out:
        trials = interrupts.run_trials("docker", 2, seed=11, bound=90, out=out)
    assert all(t.ok for t in trials), (tmp_path / "trials.txt").read_text()
