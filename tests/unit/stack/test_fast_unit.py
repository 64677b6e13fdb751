"""Issue 19's pure parts: the preload key, the fork server's small rules, readiness events in the health wait,
death asked rarely while waiting, and a renewed local plan keeping its ports."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from chaos import forkserver
from chaos.stack import health
from chaos.stack.errors import StackFileError
from chaos.stack.local import LocalBackend, preload_modules
from chaos.stack.spec import HealthSpec, Stack, apply_scale, load_stack, loads_stack

REFERENCE = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"


@pytest.fixture(scope="module")
def stack() -> Stack:
    return load_stack(REFERENCE)


def test_preload_lists_the_proxys_modules_first_and_each_module_once(stack: Stack) -> None:
    modules = preload_modules(stack.spec)
    assert modules[:2] == ["chaos.proxy.cli", "chaos.proxy.server"]
    assert len(modules) == len(set(modules)) and "aiohttp.web" in modules
    # libraries only: a service's own module runs as __main__ in each instance and must not be imported before
    commands = {svc.command[2] for svc in stack.spec.services.values() if svc.command[:2] == ["python", "-m"]}
    assert not commands & set(modules)


def test_a_preload_entry_that_is_not_a_module_name_is_one_line_naming_the_field(stack: Stack) -> None:
    text = REFERENCE.read_text().replace("preload: [chaos.proxy.cli, chaos.proxy.server]",
                                         "preload: [chaos.proxy.cli, chaos proxy]")
    with pytest.raises(StackFileError, match=r"bad.yaml:\d+:\d+: services.proxy.preload: .*'chaos proxy' is not a module"):
        loads_stack(text, "bad.yaml")


def test_an_unchanged_stack_file_is_parsed_once(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(REFERENCE.read_text())
    first = load_stack(path)
    assert load_stack(path) is first
    path.write_text(REFERENCE.read_text().replace("EDGE_CAPACITY: 2000", "EDGE_CAPACITY: 2001"))
    again = load_stack(path)
    assert again is not first and again.spec.services["edge"].env["EDGE_CAPACITY"] == 2001


@pytest.mark.parametrize(("argv", "forked"), [
    (["python", "-m", "audioroom.edge"], True),
    (["/usr/bin/python3", "-m", "chaos.proxy", "--port", "1"], True),
    (["python", "script.py"], False),
    (["python", "-c", "pass"], False),
    (["sh", "-c", "exec redis-server"], False),
])
def test_only_python_dash_m_runs_in_the_forked_interpreter(argv: list[str], forked: bool) -> None:
    assert forkserver._runs_in_process(argv) is forked


def test_exit_codes_read_as_a_shell_reports_them() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    assert forkserver._exit_code(os.waitpid(pid, 0)[1]) == 3
    pid = os.fork()
    if pid == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    assert forkserver._exit_code(os.waitpid(pid, 0)[1]) == 128 + signal.SIGKILL


def test_the_environment_room_fits_the_largest_own_environment() -> None:
    room = forkserver.environ_room([{"A": "x" * 100}, {"B": "y" * 5000}], margin=10)
    assert len(room) == len("B") + 5000 + 2 + 10


def test_emptying_kept_data_keeps_the_folder(tmp_path: Path) -> None:
    (tmp_path / "appendonlydir").mkdir()
    (tmp_path / "appendonlydir" / "a.aof").write_text("x")
    (tmp_path / "dump.rdb").write_text("x")
    forkserver._empty(str(tmp_path))
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []


def test_a_child_the_server_could_not_record_never_runs(tmp_path: Path) -> None:
    """The hold pipe: a child whose server died before writing its birth exits without running anything."""
    marker = tmp_path / "ran"
    hold_r, hold_w = os.pipe()
    grouped_r, grouped_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(hold_w)
            os.close(grouped_r)
            forkserver._child({"name": "x", "argv": ["sh", "-c", f"touch {marker}"], "env": {"PATH": "/usr/bin:/bin"},
                               "cwd": str(tmp_path), "log": str(tmp_path / "x.log")}, hold_r, None, grouped_w)
        finally:
            os._exit(99)  # never return into pytest, whatever _child does
    os.close(hold_r)
    os.close(grouped_w)
    assert os.read(grouped_r, 1) == b"g"  # the child has its own group before it waits to be recorded
    os.close(grouped_r)
    os.close(hold_w)  # as when the server is killed between fork and the births line
    assert forkserver._exit_code(os.waitpid(pid, 0)[1]) == 70
    assert not marker.exists()


def test_health_wait_checks_an_instance_that_said_ready_at_once() -> None:
    """With readiness events the instance is checked when it says so, not at the next round."""
    said = {"ready": False}
    checks: list[float] = []
    began = time.monotonic()

    def wake(timeout: float) -> set[str]:
        if not said["ready"]:
            time.sleep(min(timeout, 0.05))
            said["ready"] = True
            return {"a"}
        time.sleep(timeout)
        return set()

    def where() -> tuple[str, int]:
        checks.append(time.monotonic() - began)
        return ("127.0.0.1", 1)

    real = health.answer
    health.answer = lambda spec, host, port, *a, **kw: "" if said["ready"] else "not yet"  # type: ignore[assignment]
    try:
        took = health.wait_all([("a", HealthSpec(kind="tcp", timeout_s=30), where)], interval=10.0, wake=wake)
    finally:
        health.answer = real  # type: ignore[assignment]
    assert "a" in took and len(checks) == 2  # the first round, then at the event (the round was 10 s away)


def test_health_wait_asks_whether_an_instance_died_at_most_every_half_second() -> None:
    asked: list[float] = []
    real = health.answer
    health.answer = lambda spec, host, port, *a, **kw: "HTTP 503"  # type: ignore[assignment]
    try:
        with pytest.raises(health.NotHealthy) as timed_out:
            health.wait_all([("a", HealthSpec(kind="tcp", timeout_s=1.2), lambda: ("127.0.0.1", 1))],
                            alive=lambda name: asked.append(time.monotonic()) or None, interval=0.01)
    finally:
        health.answer = real  # type: ignore[assignment]
    assert timed_out.value.name == "a" and str(timed_out.value).endswith("(tcp 127.0.0.1:1; last answer: HTTP 503)")
    gaps = [b - a for a, b in zip(asked, asked[1:])]
    assert 2 <= len(asked) <= 4 and all(gap >= health.ALIVE_EVERY * 0.9 for gap in gaps)


def test_a_renewed_local_plan_keeps_the_ports_of_the_same_instances(stack: Stack, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(tmp_path))
    backend = LocalBackend(stack, "run-x")
    first = backend.plan(stack.spec, "ci", "s", "t")
    again = backend.plan(stack.spec, "ci", "s", "t", like=first)
    assert [(i.name, i.port) for i in again.instances] == [(i.name, i.port) for i in first.instances]
    assert [(p.name, p.listen, p.upstream) for p in again.proxies] == \
           [(p.name, p.listen, p.upstream) for p in first.proxies]
    scaled = apply_scale(stack.spec, {"edge": 2})
    other = backend.plan(scaled, "ci", "s", "t", like=first)  # other instances: other (fresh) ports
    assert len(other.instances) == len(first.instances) - 1


class _Networks:
    """An engine whose network removal is refused ("has active endpoints") ``refusals`` times."""

    def __init__(self, refusals: int, attached: dict[str, object] | None = None) -> None:
        self.refusals = refusals
        self.calls = 0
        self.attached = {"c1": {"Name": "rq-x-edge-1"}} if attached is None else attached  # what inspect shows

    def inspect_network(self, net_id: str) -> dict[str, object]:
        return {"Containers": self.attached}

    def remove_network(self, net_id: str) -> None:
        import docker

        self.calls += 1
        if self.calls <= self.refusals:
            raise docker.errors.APIError("error while removing network: network rq-x id 1 has active endpoints")


def _backend_with(api: _Networks) -> object:
    from types import SimpleNamespace

    from chaos.stack.docker import DockerBackend

    backend = DockerBackend.__new__(DockerBackend)  # no engine: only the network removal is under test
    backend.client = SimpleNamespace(api=api)
    backend.stuck_networks = set()
    return backend


def test_a_network_whose_endpoints_are_released_late_is_removed_once_they_are() -> None:
    api = _Networks(refusals=2)
    _backend_with(api)._remove_network({"Id": "1", "Name": "rq-x"}, timeout=5.0)
    assert api.calls == 3


def test_a_network_that_keeps_an_endpoint_is_one_line_naming_it() -> None:
    from chaos.stack.errors import StackError

    with pytest.raises(StackError, match=r"removing network rq-x.*active endpoints"):
        _backend_with(_Networks(refusals=10_000))._remove_network({"Id": "1", "Name": "rq-x"}, timeout=0.5)


def test_a_network_the_engine_keeps_with_no_container_on_it_is_said_and_not_a_leftover(caplog) -> None:
    """Docker's stuck endpoint (moby#42119): refused for ever, yet inspect shows no container on it."""
    backend = _backend_with(_Networks(refusals=10_000, attached={}))
    backend._remove_network({"Id": "1", "Name": "rq-x"}, timeout=0.3)
    assert backend.stuck_networks == {"rq-x"}
    assert "rq-x is stuck in the engine" in caplog.text and "moby#42119" in caplog.text


def test_a_health_answer_says_what_came_back() -> None:
    """Not just "unhealthy": refused, a status, a closed socket - a bring-up that gives up says which."""
    import socket
    import threading

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
    assert health.answer(HealthSpec(kind="tcp"), "127.0.0.1", port, timeout=0.5) == "connection refused"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def reply() -> None:
            conn, _ = server.accept()
            conn.recv(1024)
            conn.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            conn.close()

        thread = threading.Thread(target=reply)
        thread.start()
        assert health.answer(HealthSpec(kind="http", path="/health"), "127.0.0.1", port, timeout=2) == "HTTP 503"
        thread.join()
    assert health.answer(HealthSpec(kind="none"), "", 0) == ""
