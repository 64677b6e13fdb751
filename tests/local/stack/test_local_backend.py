"""The local backend on the real reference stack: bring-up, faults as signals, complete teardown, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.stack import bring_up, registry, start_stack
from chaos.stack.errors import StackFileError, Unsupported

from chaos.stack.local import _proc_state

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"
SMALL = {"edge": 2, "supervisor": 1, "host": 1, "crowd": 1}


@pytest.fixture(scope="module")
def state_dir(module_state_dir):
    return module_state_dir  # one registry for the module's shared stack and its tests


@pytest.fixture(scope="module")
def stack(state_dir):
    with bring_up(STACK, backend="local", scale=SMALL, profile="ci") as running:
        yield running


def alive(pid: int, start: str) -> bool:
    """Running or stopped; a zombie waiting for its (new) parent to reap it is dead."""
    return _proc_state(pid, start) != "exited"


def healthy(stack, name: str) -> bool:
    return stack.healthy(name)


def becomes_healthy(stack, name: str) -> bool:
    from chaos.stack.health import wait_all

    inst = stack.plan.instance(name)
    wait_all([(name, stack.spec.services[inst.service].health, lambda: stack.address(name))], secrets=stack.secrets)
    return True


def test_up_returns_with_every_instance_running_healthy_and_recorded(stack):
    names = [i.name for i in stack.instances()]
    assert names == [i.name for i in stack.plan.instances]
    assert all(i.state == "running" for i in stack.instances())
    assert all(healthy(stack, n) for n in names)
    assert all(stack.address(n)[0] == "127.0.0.1" for n in names)
    assert registry.load(stack.run_id)["backend"] == "local"


def test_every_link_is_a_proxy_on_the_stacks_proxy(stack):
    with stack.proxy_client() as client:
        proxies = client.proxies()
    planned = {link.name: link for link in stack.links()}
    assert set(proxies) == set(planned) and "crowd->edge-2" in planned
    for name, info in proxies.items():
        server = planned[name].upstream
        assert info.upstream == server and info.enabled
        host, port = stack.address(name.split("->")[1])
        assert server == f"{host}:{port}"


def test_pause_resume_stop_start_kill_restart_map_to_signals(stack):
    pid = stack.backend.procs["edge-2"]["pid"]
    stack.pause("edge-2")
    assert stack.instances("edge")[1].state == "paused" and not healthy(stack, "edge-2")
    stack.resume("edge-2")
    assert stack.instances("edge")[1].state == "running" and becomes_healthy(stack, "edge-2")
    stack.stop("edge-2")
    assert stack.instances("edge")[1].state == "exited"
    stack.start("edge-2")
    assert stack.instances("edge")[1].state == "running"
    assert stack.backend.procs["edge-2"]["pid"] != pid
    stack.kill("edge-2")
    assert stack.instances("edge")[1].state == "exited" and not healthy(stack, "edge-2")
    stack.restart("edge-2")
    assert becomes_healthy(stack, "edge-2") and stack.instances("edge")[1].state == "running"


def test_what_processes_cannot_do_is_a_clear_error(stack):
    for call in (lambda: stack.disconnect("edge-1"), lambda: stack.reconnect("edge-1"),
                 lambda: stack.squeeze("edge-1", cpus=0.5), lambda: stack.unsqueeze("edge-1")):
        with pytest.raises(Unsupported, match="docker"):
            call()
    with pytest.raises(Exception, match="no instance 'edge-9'"):
        stack.kill("edge-9")
    assert stack.image_ids() == {}


def test_teardown_ends_every_process_group(state_dir):
    with bring_up(STACK, backend="local", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 0}) as running:
        procs = {n: (p["pid"], p["start"]) for n, p in running.backend.procs.items()}
        running.pause("edge-1")  # a stopped process must not survive teardown either
        run_id = running.run_id
    assert procs and not [n for n, (pid, start) in procs.items() if alive(pid, start)]
    assert run_id not in [r["run_id"] for r in registry.records()]


def test_bad_stack_file_starts_nothing(state_dir, tmp_path):
    bad = tmp_path / "stack.yaml"
    bad.write_text(STACK.read_text().replace("  - crowd->edge\n", "  - crowd->edges\n"))
    before = set(state_dir.iterdir())
    with pytest.raises(StackFileError, match=r"stack.yaml:\d+:\d+: links\[6\]: unknown service 'edges'"):
        start_stack(bad, backend="local")
    with pytest.raises(StackFileError, match="required service 'edge' needs at least one replica"):
        start_stack(STACK, backend="local", scale={"edge": 0})
    with pytest.raises(StackFileError, match="unknown profile 'fast'"):
        start_stack(STACK, backend="local", profile="fast")
    assert set(state_dir.iterdir()) == before  # no run recorded, no log folder: nothing started


def roomquake(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_cli_up_status_down_across_processes(tmp_path, tmp_path_factory):
    leases = tmp_path_factory.mktemp("leases") / "ports.json"
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path), "ROOMQUAKE_PORT_LEASES": str(leases)}
    up = roomquake("stack", "up", "--backend", "local", "--scale", "edge=1,supervisor=1,host=1,crowd=0", env=env)
    assert up.returncode == 0, up.stderr
    assert "instances healthy" in up.stdout
    record = json.loads(next(tmp_path.glob("*.json")).read_text())
    procs = record["state"]["procs"]
    assert all(alive(p["pid"], p["start"]) for p in procs.values())  # outlived the `up` command
    # its ports stay leased to the run (the `up` process is gone, the stack is not): no other draw takes
    # one while its instance is down for a fault
    leased = {int(port) for port, lease in json.loads(leases.read_text()).items()
              if lease["owner"] == str(tmp_path / record["run_id"])}
    ports = {p["port"] for p in procs.values() if p.get("port")}
    assert ports and ports <= leased, (ports, leased)
    status = roomquake("stack", "status", env=env)
    assert status.returncode == 0 and "edge-1" in status.stdout and "running" in status.stdout
    down = roomquake("stack", "down", env=env)
    assert down.returncode == 0 and "down in" in down.stdout
    assert not [n for n, p in procs.items() if alive(p["pid"], p["start"])]
    assert not list(tmp_path.iterdir())  # no record, no logs: nothing left behind
    assert not json.loads(leases.read_text())  # and no port leased to it
    assert "no stack is up" in roomquake("stack", "status", env=env).stdout


def test_cli_bad_input_is_one_line(tmp_path):
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path)}
    bad = tmp_path / "s.yaml"
    bad.write_text(STACK.read_text().replace("port: 8090", "port: 20005"))  # inside the proxy's listener range
    result = roomquake("stack", "up", "--backend", "local", "-f", str(bad), env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "port clash" in lines[0] and "s.yaml:" in lines[0]
    result = roomquake("stack", "up", "--backend", "local", "--scale", "edge=0", env=env)
    assert result.returncode == 2 and "edge=0" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.json"))
