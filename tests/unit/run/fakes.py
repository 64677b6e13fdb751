"""Fakes of RunningStack and ProxyClient for unit tests of the runner (the real ones are tested in tests/local, tests/docker).

The fake world: a room hosted on an edge; when that edge is killed, stopped
or paused, the room goes to "relaunching" and, ``relaunch_s`` later, moves to
another running edge (slower with fewer running supervisors). Listeners are
connected while the room is live.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


@dataclass
class FakeInstance:
    name: str
    service: str
    replica: int
    state: str = "running"


class FakeProxy:
    def __init__(self, url: str = "http://fake") -> None:
        self.url = url
        self.toxics: dict[str, dict[str, dict[str, Any]]] = {}
        self.disabled: set[str] = set()
        self.calls: list[tuple[Any, ...]] = []
        self.fail_on: set[str] = set()  # proxy names whose add_toxic raises
        self.lock = threading.Lock()

    def add_toxic(self, proxy: str, type: str, stream: str = "downstream", toxicity: float = 1.0,
                  attributes: dict[str, Any] | None = None, name: str | None = None) -> str:
        if proxy in self.fail_on:
            raise RuntimeError(f"proxy {proxy} refused the toxic")
        name = name or f"{type}_{stream}"
        with self.lock:
            self.toxics.setdefault(proxy, {})[name] = {"type": type, "stream": stream, "toxicity": toxicity,
                                                        "attributes": dict(attributes or {})}
            self.calls.append(("add_toxic", proxy, name))
        return name

    def remove_toxic(self, proxy: str, name: str) -> None:
        with self.lock:
            del self.toxics[proxy][name]
            self.calls.append(("remove_toxic", proxy, name))

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        with self.lock:
            (self.disabled.discard if enabled else self.disabled.add)(proxy)
            self.calls.append(("set_enabled", proxy, enabled))

    def active_toxics(self) -> int:
        return sum(len(t) for t in self.toxics.values())


@dataclass
class FakeStack:
    edges: int = 3
    supervisors: int = 4
    relaunch_s: float = 0.3
    run_id: str = "fake-run"
    proxy_url: str = "http://fake-proxy"
    backend_kind: str = "fake"
    automation: str = "supervisor"
    calls: list[tuple[str, str]] = field(default_factory=list)
    loads: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_ops: set[tuple[str, str]] = field(default_factory=set)
    value_overrides: dict[str, Any] = field(default_factory=dict)
    down_called: bool = False
    torn_down: bool = False  # a fake's down() leaves nothing to verify (LeakyStack in test_runner does)

    def __post_init__(self) -> None:
        self._inst = {}
        for service, n in (("state", 1), ("control", 1), ("edge", self.edges), ("supervisor", self.supervisors),
                           ("host", 2), ("crowd", 1), ("proxy", 1)):
            for r in range(1, n + 1):
                self._inst[f"{service}-{r}"] = FakeInstance(f"{service}-{r}", service, r)
        self.room_edge: str | None = None
        self.lost_at: float | None = None
        self.relaunches = 0
        self.lock = threading.RLock()
        self.checkpoint = lambda: None
        self.spec = SimpleNamespace(probes={
            "room.state": SimpleNamespace(params={"room": "launch"}),
            "room.edge": SimpleNamespace(params={"room": "launch"}),
            "room.relaunches": SimpleNamespace(params={"room": "launch"}),
            "crowd.connected_ratio": SimpleNamespace(params={}),
            "supervisor.running": SimpleNamespace(params={}),
        }, load={}, history=None)

    # --- RunningStack API ---
    def instances(self, service: str | None = None) -> list[FakeInstance]:
        with self.lock:
            return [FakeInstance(i.name, i.service, i.replica, i.state) for i in self._inst.values()
                    if service is None or i.service == service]

    def links(self) -> list[SimpleNamespace]:
        out = []
        for client, server in (("edge", "state"), ("supervisor", "state"), ("crowd", "edge"), ("control", "state")):
            for inst in self.instances(server):
                out.append(SimpleNamespace(name=f"{client}->{inst.name}", link=f"{client}->{server}", listen="", upstream=""))
        return out

    def image_ids(self) -> dict[str, str]:
        return {"services": "sha256:fake"}

    def log_text(self, instance: str, lines: int) -> str:
        return "\n".join(f"{instance} line {n}" for n in range(1, 4))[-10_000:]

    def proxy_client(self) -> FakeProxy:
        return FakeProxy(self.proxy_url)

    def leftovers(self) -> list[str]:
        return []

    def _op(self, op: str, name: str, state: str | None) -> None:
        if (op, name) in self.fail_ops:
            raise RuntimeError(f"{op} {name} failed")
        with self.lock:
            self.calls.append((op, name))
            if state is not None:
                self._inst[name].state = state
            if name == self.room_edge and state in ("exited", "paused") and self.lost_at is None:
                self.lost_at = time.monotonic()

    def kill(self, name: str) -> None: self._op("kill", name, "exited")
    def stop(self, name: str) -> None: self._op("stop", name, "exited")
    def start(self, name: str) -> None: self._op("start", name, "running")
    def pause(self, name: str) -> None: self._op("pause", name, "paused")
    def resume(self, name: str) -> None: self._op("resume", name, "running")
    def restart(self, name: str) -> None: self._op("restart", name, "running")
    def disconnect(self, name: str) -> None: self._op("disconnect", name, None)
    def reconnect(self, name: str) -> None: self._op("reconnect", name, None)
    def squeeze(self, name: str, cpus: float | None = None, memory_mb: int | None = None) -> None: self._op("squeeze", name, None)
    def unsqueeze(self, name: str) -> None: self._op("unsqueeze", name, None)

    def load(self, action: str, **params: Any) -> None:
        with self.lock:
            self.loads.append((action, params))
            if action == "start" and self.room_edge is None:
                self.room_edge = "edge-1"

    def select(self, selector: str, **params: Any) -> list[str]:
        edge = self.probe("room.edge", **params)
        return [edge] if edge else []

    def _tick(self) -> None:
        """Advance the fake world: relaunch a lost room once enough time passed."""
        with self.lock:
            if self.lost_at is None:
                return
            running_sup = sum(1 for i in self._inst.values() if i.service == "supervisor" and i.state == "running")
            delay = self.relaunch_s * (self.supervisors / max(running_sup, 1))
            if running_sup and time.monotonic() - self.lost_at >= delay:
                healthy = [i.name for i in self._inst.values() if i.service == "edge" and i.state == "running"]
                if healthy:
                    self.room_edge = sorted(healthy)[0]
                    self.lost_at = None
                    self.relaunches += 1

    def probe(self, name: str, **params: Any) -> Any:
        if name in self.value_overrides:
            value = self.value_overrides[name]
            return value() if callable(value) else value
        self._tick()
        with self.lock:
            if name == "room.state":
                return None if self.room_edge is None else ("relaunching" if self.lost_at else "live")
            if name == "room.edge":
                return self.room_edge
            if name == "room.relaunches":
                return float(self.relaunches)
            if name == "crowd.connected_ratio":
                return 0.0 if self.room_edge is None or self.lost_at else 1.0
            if name == "supervisor.running":
                return float(sum(1 for i in self._inst.values() if i.service == "supervisor" and i.state == "running"))
        raise KeyError(name)

    def probe_spec(self, spec: Any, **params: Any) -> Any:
        return 42.0

    def down(self) -> None:
        self.down_called = True


class FakeOpener:
    """open_stack for RunOptions: yields the fake and records the teardown."""

    def __init__(self, stack: FakeStack, fail: BaseException | None = None) -> None:
        self.stack = stack
        self.fail = fail
        self.exited = False

    def __call__(self, runner: Any) -> FakeOpener:
        return self

    def __enter__(self) -> FakeStack:
        if self.fail is not None:
            raise self.fail
        return self.stack

    def __exit__(self, *exc: object) -> None:
        self.exited = True
        self.stack.down()
