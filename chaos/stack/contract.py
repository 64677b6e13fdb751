"""The one seam between a running stack and what acts on it (the runner, the faults, the probes, the fixtures).

``LiveStack`` is what they may use of a stack, whatever brought it up:
``chaos.stack.RunningStack`` implements it for every backend, and unit tests
hand in fakes of the same shape. Nothing outside ``chaos.stack`` probes a
stack for optional members: what a stack offers is all here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import docker

    from chaos.probes import ProbeSpec
    from chaos.proxy.client import ProxyClient
    from chaos.stack.spec import StackSpec

# What a probe reads: a number, a word, a flag, a list of names (a selector's probe), a JSON document's
# object, or None (unknown now).
ProbeValue = float | str | bool | list[Any] | dict[str, Any] | None


@dataclass(frozen=True)
class Instance:
    name: str
    service: str
    replica: int
    state: str  # running | paused | exited | missing


@dataclass(frozen=True)
class LinkProxy:
    name: str  # "crowd->edge-2"
    link: str  # "crowd->edge"
    listen: str
    upstream: str


class LiveStack(Protocol):
    """A brought-up (or attached) stack. See docs/ARCHITECTURE.md "Running stack"."""

    checkpoint: Callable[[], None]  # called while it waits (load requests); may raise (a noted Ctrl-C)

    @property
    def run_id(self) -> str: ...

    @property
    def proxy_url(self) -> str:
        """The Toxiproxy API of this stack."""

    @property
    def spec(self) -> StackSpec:
        """The stack file it runs: probes, selectors, load actions, histories, automation."""

    @property
    def torn_down(self) -> bool:
        """down() was called: leftovers() then says what is still there."""

    @property
    def backend_kind(self) -> str: ...

    @property
    def automation(self) -> str | None: ...

    # what is there
    def instances(self, service: str | None = None) -> list[Instance]: ...
    def address(self, instance: str) -> tuple[str, int]: ...
    def links(self) -> list[LinkProxy]: ...
    def image_ids(self) -> dict[str, str]: ...
    def log_text(self, instance: str, lines: int) -> str: ...
    def proxy_client(self) -> ProxyClient: ...
    def container_of(self, instance: str) -> tuple[docker.DockerClient, str] | None:
        """Its running container and engine, for packet faults (None: not running; Unsupported: no containers)."""

    # server faults
    def kill(self, instance: str) -> None: ...
    def stop(self, instance: str) -> None: ...
    def start(self, instance: str) -> None: ...
    def restart(self, instance: str) -> None: ...
    def pause(self, instance: str) -> None: ...
    def resume(self, instance: str) -> None: ...
    def disconnect(self, instance: str) -> None: ...
    def reconnect(self, instance: str) -> None: ...
    def squeeze(self, instance: str, cpus: float | None = None, memory_mb: int | None = None) -> None: ...
    def unsqueeze(self, instance: str) -> None: ...

    # the stack file's domain: probes, selectors, load
    def probe(self, name: str, **params: Any) -> ProbeValue: ...
    def probe_spec(self, spec: ProbeSpec, **params: Any) -> ProbeValue: ...
    def select(self, selector: str, **params: Any) -> list[str]: ...
    def load(self, action: str, **params: Any) -> None: ...

    # after down()
    def leftovers(self) -> list[str]: ...
