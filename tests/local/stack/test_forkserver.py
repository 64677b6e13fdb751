"""The local fork server on the real reference stack (issue 19): instances forked from one preloaded interpreter,
each recorded before it runs, indistinguishable from exec'd processes for signals, /proc and the run record."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from chaos.authoring.reset import reset
from chaos.stack import registry, start_stack
from chaos.stack.errors import StackError
from chaos.stack.local import SERVER, live_groups

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"
SMALL = {"edge": 2, "supervisor": 1, "host": 1, "crowd": 1}


@pytest.fixture(scope="module")
def state_dir(module_state_dir):
    return module_state_dir  # one registry for the module's shared stack and its tests


@pytest.fixture(scope="module")
def stack(state_dir):
    running = start_stack(STACK, backend="local", scale=SMALL, profile="ci")
    try:
        yield running
    finally:
        running.down()
        assert running.leftovers() == []


def stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def births(stack) -> list[dict]:
    path = registry.state_dir() / stack.run_id / "births"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_instance_is_forked_by_the_recorded_server_and_born_in_the_births_file(stack) -> None:
    procs = registry.load(stack.run_id)["state"]["procs"]
    server = procs[SERVER]
    assert stat(server["pid"])[0] != "Z" and server["preload"][:2] == ["chaos.proxy.cli", "chaos.proxy.server"]
    born = {(b["name"], b["pid"], b["start"]) for b in births(stack)}
    for inst in stack.plan.instances:
        rec = procs[inst.name]
        assert (inst.name, rec["pid"], rec["start"]) in born, inst.name  # in the births file, with its start time
        fields = stat(rec["pid"])
        assert int(fields[1]) == server["pid"]  # the fork server's child ...
        assert int(fields[2]) == rec["pid"] and int(fields[3]) == rec["pid"]  # ... leading its own group and session


def test_a_forked_instance_shows_its_own_environment_command_and_name(stack) -> None:
    rec = stack.backend.procs["edge-2"]
    env = Path(f"/proc/{rec['pid']}/environ").read_bytes().split(b"\0")
    assert b"RQ_INSTANCE=edge-2" in env and f"RQ_PORT={rec['env']['RQ_PORT']}".encode() in env
    assert not any(e.startswith(b"ROOMQUAKE_ENV_ROOM=") for e in env)  # the server's padding is not shown
    keeper_cmdline = [a for a in Path(f"/proc/{rec['pid']}/cmdline").read_bytes().split(b"\0") if a]
    assert keeper_cmdline[-2:] == [b"-m", b"audioroom.edge"]
    assert Path(f"/proc/{rec['pid']}/comm").read_text().strip() == "edge-2"
    (service,) = [int(p) for p in Path(f"/proc/{rec['pid']}/task/{rec['pid']}/children").read_text().split()]
    assert b"RQ_INSTANCE=edge-2" in Path(f"/proc/{service}/environ").read_bytes()  # the keeper's child, the service


def test_ready_events_come_from_the_services_and_restarts_go_through_the_record(stack) -> None:
    client = stack.backend._connect()
    mark = client.mark
    old = stack.backend.procs["edge-1"]["pid"]
    stack.restart("edge-1")
    new = registry.load(stack.run_id)["state"]["procs"]["edge-1"]["pid"]
    assert new == stack.backend.procs["edge-1"]["pid"] != old  # in the record at once
    assert any(b["pid"] == new for b in births(stack))
    heard: list[tuple[str, int]] = []
    deadline = time.monotonic() + 60
    while ("ready", new) not in heard and time.monotonic() < deadline:
        events, mark = client.events_after(mark, 1.0)
        heard += [(e["event"], e["pid"]) for e in events if e["name"] == "edge-1"]
    assert ("exit", old) in heard and ("ready", new) in heard  # the old one's end, the new one's RQ_READY_FD
    deadline = time.monotonic() + 30
    while not stack.healthy("edge-1") and time.monotonic() < deadline:  # ready: serving; healthy may lag a beat
        time.sleep(0.05)
    assert stack.healthy("edge-1")


def test_kill_stop_pause_on_a_forked_keeper_group_and_a_stop_is_not_undone(stack) -> None:
    name = "control-1"
    pgid = stack.backend.procs[name]["pid"]
    stack.pause(name)
    assert stack.instances("control")[0].state == "paused"
    assert all(stat(p)[0] == "T" for p in _members(pgid))  # the keeper and the service, both stopped
    stack.resume(name)
    stack.stop(name)  # SIGTERM: the service ends cleanly and the keeper with it, restarting nothing
    time.sleep(1.0)
    assert stack.instances("control")[0].state == "exited" and not live_groups({pgid})
    stack.start(name)
    pgid = stack.backend.procs[name]["pid"]
    stack.kill(name)
    assert stack.instances("control")[0].state == "exited" and not live_groups({pgid})
    stack.start(name)
    assert stack.instances("control")[0].state == "running"


def _members(pgid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(stat(int(entry))[2]) == pgid:
                    out.append(int(entry))
            except (OSError, IndexError):
                continue
    return out


def test_a_reset_forks_every_instance_afresh_keeping_ports_and_link_proxies(stack) -> None:
    before = {n: r["pid"] for n, r in stack.backend.procs.items() if n != SERVER}
    ports = {i.name: i.port for i in stack.plan.instances}
    done = reset(stack, scale=SMALL, profile="ci")
    assert "link proxies kept" in done[0] and done[-1].startswith("reset verified")
    after = {n: r["pid"] for n, r in stack.backend.procs.items() if n != SERVER}
    assert after["proxy-1"] == before["proxy-1"]
    assert all(after[n] != before[n] for n in before if n != "proxy-1")
    assert not live_groups({pid for n, pid in before.items() if n != "proxy-1"})  # the old ones are gone
    assert {i.name: i.port for i in stack.plan.instances} == ports


def test_a_module_that_cannot_be_preloaded_is_one_line_naming_the_field_and_nothing_is_left(state_dir, tmp_path):
    bad = tmp_path / "stack.yaml"
    bad.write_text(STACK.read_text().replace("preload: [chaos.proxy.cli, chaos.proxy.server]",
                                             "preload: [chaos.proxy.cli, chaos.proxy.no_such_module]")
                   .replace('local:\n  pythonpath: ["."]', f'local:\n  pythonpath: ["{ROOT / "docker"}"]'))
    before = set(state_dir.iterdir())
    with pytest.raises(StackError) as failed:
        start_stack(bad, backend="local", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 0})
    message = failed.value.one_line()
    assert f"{bad}: services.proxy.preload.1: cannot import 'chaos.proxy.no_such_module'" in message
    assert "\n" not in message
    assert set(state_dir.iterdir()) == before  # no record, no process: the server went with the rest
    assert not [p for p in _all_pids() if b"no_such_module" in _cmdline(p)]


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_sigterm_to_the_server_alone_leaves_the_instances_to_the_teardown(state_dir) -> None:
    """The server is one recorded group among the others: its death ends no instance; teardown ends all."""
    running = start_stack(STACK, backend="local", scale={"edge": 1, "supervisor": 1, "host": 1, "crowd": 0})
    try:
        server = running.backend.procs[SERVER]["pid"]
        os.kill(server, signal.SIGKILL)
        time.sleep(0.5)
        assert all(i.state == "running" for i in running.instances())
        running.restart("edge-1")  # a new server is started (and recorded) for it
        assert running.backend.procs[SERVER]["pid"] != server
        assert registry.load(running.run_id)["state"]["procs"][SERVER]["pid"] == running.backend.procs[SERVER]["pid"]
        assert running.instances("edge")[0].state == "running"
    finally:
        running.down()
    assert running.leftovers() == []
