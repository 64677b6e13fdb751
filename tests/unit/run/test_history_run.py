"""The runner reads the histories a stack declares (real HTTP on loopback, fake stack otherwise): history
assertions judged into the verdict, relaunches attributed to faults, all of it in the journal."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest

from chaos.run import Verdict
from chaos.run.progress import line_for
from chaos.run import events as ev

from .fakes import FakeStack
from .test_runner import run


class Routes:
    """A loopback HTTP server whose answers are computed at request time."""

    def __init__(self, routes: dict[str, Callable[[], Any]]) -> None:
        table = routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                make = table.get(self.path)
                body = json.dumps(make()).encode() if make else b"{}"
                self.send_response(200 if make else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class World:
    """The fake stack's edge kill, as the crowd and control would report it afterwards."""

    def __init__(self, stack: FakeStack) -> None:
        self.killed_wall: float | None = None
        kill = stack.kill

        def recording(name: str) -> None:
            self.killed_wall = self.killed_wall or time.time()
            kill(name)

        stack.kill = recording  # type: ignore[method-assign]

    def relaunches(self) -> dict[str, Any]:
        records = [{"generation": 1, "edge": "edge-9", "reason": "edge_lost",  # a relaunch before any fault: unexpected
                    "failed_at": time.time() - 3600, "completed_at": time.time() - 3599}]
        if self.killed_wall is not None:
            records.append({"generation": 2, "edge": "edge-2", "reason": "edge_lost", "failed_at": self.killed_wall - 0.1,
                            "detected_at": self.killed_wall + 0.2, "completed_at": self.killed_wall + 0.3})
        return {"room": "launch", "relaunch_history": records}

    def history(self) -> dict[str, Any]:
        now = time.time()
        k = self.killed_wall or now

        def seg(gen: int, first: float, last: float) -> dict[str, Any]:
            return {"gen": gen, "edge": "e", "first_seq": 0, "last_seq": 9, "first_t": first, "last_t": last,
                    "frames": 10, "dups": 0, "reorders": 0, "max_gap_s": 0.1}

        listeners = [{"id": f"crowd-1/{i}", "room": "launch", "joined_at": k - 5, "active": True, "truncated": False,
                      "segments": [seg(1, k - 5, k), seg(2, k + 0.5 + 0.1 * i, now)], "events": []} for i in range(5)]
        return {"instance": "crowd-1", "now": now, "truncated_listeners": 0, "listeners": listeners}


@pytest.fixture
def world_stack() -> Iterator[tuple[FakeStack, World]]:
    stack = FakeStack(relaunch_s=0.3)
    world = World(stack)
    server = Routes({"/rooms/launch": world.relaunches, "/history?room=launch": world.history})
    stack.spec.history = SimpleNamespace(  # type: ignore[attr-defined]
        listeners=SimpleNamespace(service="crowd", path="/history?room={room}", field=None),
        relaunches=SimpleNamespace(service="control", path="/rooms/{room}", field="relaunch_history"),
    )
    stack.address = lambda name: ("127.0.0.1", server.port)  # type: ignore[attr-defined]
    yield stack, world
    server.close()


BODY = """
method:
  - {id: kill-edge, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: relaunched, probe: room.relaunches, expect: ">= 1", within: 3s, after: kill-edge}
history:
  no_split_brain: true
  max_gap_p99: "< 3s"
  back_within: {seconds: 2s, fraction: ">= 0.9"}
"""


def test_history_assertions_count_in_the_verdict_and_relaunches_are_attributed(tmp_path: Path, world_stack) -> None:
    stack, _ = world_stack
    result, journal, *_ = run(BODY, tmp_path, stack)
    assert result.verdict is Verdict.PASSED, result.reason
    history = {a["check"]: a for a in journal["assertions"] if a["phase"] == "history"}
    assert set(history) == {"history.no_split_brain", "history.max_gap_p99", "history.back_within"}
    assert all(a["ok"] for a in history.values())
    report = journal["history"]["report"]
    assert report["listeners"] == 5 and report["relaunches"][-1]["generation"] == 2
    assert journal["history"]["instances"] == ["crowd-1"]
    audit = {r["generation"]: r for r in journal["relaunches"]}
    assert audit[2]["explained_by"] == ["kill-edge"] and not audit[2]["unexpected"]
    assert audit[1]["unexpected"] and journal["unexpected_relaunches"] == 1
    kinds = [e["kind"] for e in journal["events"]]
    assert "history_checked" in kinds and "relaunches_audited" in kinds


def test_a_failed_history_assertion_deviates(tmp_path: Path, world_stack) -> None:
    stack, _ = world_stack
    result, journal, *_ = run(BODY.replace('"< 3s"', '"< 100ms"'), tmp_path, stack)
    assert result.verdict is Verdict.DEVIATED
    failed = [a for a in journal["assertions"] if not a["ok"]]
    assert [a["check"] for a in failed] == ["history.max_gap_p99"]
    assert "p99 over listeners of each one's largest gap" in failed[0]["message"]


def test_without_declared_histories_the_audit_says_it_does_not_know(tmp_path: Path) -> None:
    result, journal, *_ = run("method:\n  - wait: 200ms\n", tmp_path)
    assert result.verdict is Verdict.PASSED
    assert journal["unexpected_relaunches"] is None and journal["history"] is None
    line = line_for(ev.RelaunchesAudited(room="launch", relaunches=[], unexpected=None))
    assert line == "relaunches of launch: not known (the stack declares no relaunch records)"


def test_a_surge_explains_no_relaunch_after_it_was_injected(tmp_path: Path, world_stack) -> None:
    """A one-shot fault (nothing to undo) is active only while injected; a kill until its rollback."""
    stack, world = world_stack
    body = BODY.replace("method:\n", "method:\n  - {id: more, fault: surge, listeners: 5}\n  - wait: 1500ms\n")
    result, journal, *_ = run(body, tmp_path, stack)
    audit = {r["generation"]: r for r in journal["relaunches"]}
    assert audit[2]["explained_by"] == ["kill-edge"]  # its failure began 1.5s after the surge: not the surge's doing
