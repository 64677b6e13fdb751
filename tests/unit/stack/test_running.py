"""RunningStack's domain API (load split, selectors, errors) against real loopback HTTP servers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chaos.stack.errors import StackError, StackFileError
from chaos.stack.plan import docker_addressing, make_plan
from chaos.stack.running import Backend, RunningStack
from chaos.stack.spec import apply_scale, load_stack

REFERENCE = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"


class Recorder:
    """A real HTTP server that records what it was sent and answers JSON."""

    def __init__(self, answer: dict[str, Any] | None = None, status: int = 202):
        self.got: list[tuple[str, str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, body: Any, code: int) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                outer.got.append(("POST", self.path, json.loads(self.rfile.read(length) or b"null")))
                self._reply({"ok": True}, status)

            def do_GET(self):  # noqa: N802
                self._reply(answer or {}, 200)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class AddressOnly(Backend):
    """Only addresses and states: the servers behind them are real; nothing else is used here."""

    kind = "fake"

    def __init__(self, servers: dict[str, Recorder]):
        self.servers = servers

    def state(self, name):
        return "running" if name in self.servers else "exited"

    def address(self, name):
        return "127.0.0.1", self.servers[name].port if name in self.servers else 1

    def _no(self, *args, **kwargs):
        raise AssertionError("not used in these tests")

    plan = prepare = launch = kill = stop = start = pause = resume = _no
    disconnect = reconnect = squeeze = unsqueeze = image_ids = teardown = record = _no


@pytest.fixture
def world():
    stack = load_stack(REFERENCE)
    spec = apply_scale(stack.spec, {"crowd": 3})
    stack = type(stack)(spec=spec, path=stack.path)
    plan = make_plan(spec, "ci", docker_addressing("proxy-1", 20000))
    servers = {
        "host-1": Recorder(status=201),
        "crowd-1": Recorder(),
        "crowd-2": Recorder(),
        "crowd-3": Recorder(),
        "control-1": Recorder(answer={"room": "launch", "state": "live", "edge": "edge-2"}),
    }
    running = RunningStack(stack, plan, AddressOnly(servers), "run-x", "http://127.0.0.1:1")
    yield running, servers
    for s in servers.values():
        s.close()


def test_start_creates_the_room_then_splits_listeners_over_crowd_instances(world):
    stack, servers = world
    stack.load("start", room="launch", listeners=10, ramp_s=3)
    assert servers["host-1"].got == [("POST", "/rooms", {"room": "launch", "backups": ["account-2"]})]
    bodies = [servers[f"crowd-{n}"].got[0][2] for n in (1, 2, 3)]
    assert [b["listeners"] for b in bodies] == [4, 3, 3]
    assert all(b["room"] == "launch" and b["ramp_s"] == 3 for b in bodies)


def test_selector_returns_the_instance_the_probe_names(world):
    stack, _ = world
    assert stack.select("hosting", room="launch") == ["edge-2"]


def test_unknown_names_are_clear_errors(world):
    stack, _ = world
    with pytest.raises(StackFileError, match="unknown load action 'spike'"):
        stack.load("spike")
    with pytest.raises(StackFileError, match="unknown selector 'busiest'"):
        stack.select("busiest")
    with pytest.raises(StackFileError, match="unknown probe 'room.mood'"):
        stack.probe("room.mood")
    with pytest.raises(StackError, match="no service 'edges'"):
        stack.instances("edges")


def test_a_refused_load_request_is_an_error_naming_the_instance(world):
    stack, servers = world
    servers["crowd-1"].close()
    servers["crowd-1"] = Recorder(status=400)
    stack.backend.servers = servers
    with pytest.raises(StackError, match=r"load: POST crowd-1/surge answered 400"):
        stack.load("surge", room="launch", listeners=3)
