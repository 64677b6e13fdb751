"""A pool that keeps one running stack and hands it to consecutive experiments and tests.

Experiments whose stack file, backend, scale, profile and env overrides
match reuse the running stack: between them it is renewed and the renewal
verified (chaos.authoring.reset: every instance but the proxy started
afresh, proxies reset, the stack file's ``fresh`` checks hold), and each
later experiment also gets a room of its own (chaos.authoring.rooms). A
reset that fails or cannot be verified replaces the stack by a fresh one.
A different key tears the running stack down and brings the next one up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from chaos.experiment import model as m
from chaos.labels import RunIdentity

if TYPE_CHECKING:
    from chaos.authoring.handle import StackHandle
    from chaos.run.stacks import StackOpener, StackRequest
    from chaos.stack.contract import LiveStack
    from chaos.stack.running import RunningStack


@dataclass(frozen=True)
class StackKey:
    stack_file: str
    backend: str
    scale: tuple[tuple[str, int], ...]
    profile: str | None
    env: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

    @classmethod
    def of(cls, stack_file: str | Path, backend: str, scale: Mapping[str, int] | None = None,
           profile: str | None = None, env: Mapping[str, Mapping[str, Any]] | None = None) -> StackKey:
        return cls(
            str(Path(stack_file).resolve()), backend, tuple(sorted((scale or {}).items())), profile,
            tuple(sorted((s, tuple(sorted((k, str(v)) for k, v in e.items()))) for s, e in (env or {}).items())),
        )


    def settings(self) -> dict[str, Any]:
        """scale, profile and env as ``start_stack`` and ``reset`` take them."""
        return {"scale": dict(self.scale) or None, "profile": self.profile,
                "env": {svc: dict(pairs) for svc, pairs in self.env} or None}


@dataclass
class Lease:
    """What one experiment gets from the pool: possibly renamed, and how to open its stack."""

    experiment: m.Experiment
    reused: bool
    uses: int  # how many experiments this stack has served, this one included
    open_stack: StackOpener  # chaos.run.RunOptions.open_stack


class StackPool:
    def __init__(self, backend: str | None = None, reuse: bool = True) -> None:
        self._backend = backend
        self.reuse = reuse
        self.key: StackKey | None = None
        self.stack: RunningStack | None = None
        self.uses = 0
        self.cold_starts = 0

    @property
    def backend(self) -> str:
        if self._backend is None:
            from chaos.stack import default_backend

            self._backend = default_backend()
        return self._backend

    def __enter__(self) -> StackPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        stack, self.stack, self.key, self.uses = self.stack, None, None, 0
        if stack is not None:
            stack.down()

    def _healthy(self, stack: RunningStack) -> bool:
        """A stack whose every instance is gone (e.g. killed from outside) is not worth resetting."""
        try:
            return any(i.state in ("running", "paused") for i in stack.instances())
        except Exception:  # noqa: BLE001 - an unreadable stack is replaced
            return False

    def acquire(self, key: StackKey, start: Callable[[], RunningStack]) -> tuple[RunningStack, bool, list[str]]:
        """The stack for ``key``: the running one, reset (reused=True), or a fresh one from ``start()``."""
        from chaos.authoring.reset import reset

        running = self.stack
        if self.reuse and running is not None and self.key == key and self._healthy(running):
            try:
                done = reset(running, **key.settings())
                self.uses += 1
                return running, True, done
            except Exception as err:  # noqa: BLE001 - a stack that cannot be reset is replaced by a fresh one
                note = [f"reset failed ({err}); starting a fresh stack"]
                self.close()
        else:
            note = []
            self.close()
        self.stack = fresh = start()
        self.key, self.uses = key, 1
        self.cold_starts += 1
        return fresh, False, note

    # --- experiments (chaos.run.Runner) -----------------------------------------

    def lease(self, experiment: m.Experiment, file: str | Path) -> Lease:
        from chaos.authoring.rooms import in_room, room_of
        from chaos.experiment.stackcheck import stack_file
        from chaos.run import events as ev
        from chaos.stack import start_stack

        path = stack_file(experiment.stack, Path(file).parent)
        key = StackKey.of(path, self.backend, experiment.scale, experiment.profile, experiment.env)
        will_reuse = self.reuse and self.stack is not None and self.key == key
        uses = self.uses + 1 if will_reuse else 1
        default = _start_room(path)
        room = room_of(experiment, default)
        leased = in_room(experiment, f"{room}-{uses}", default) if uses > 1 and room is not None else experiment

        @contextlib.contextmanager
        def open_stack(request: StackRequest) -> Iterator[LiveStack]:
            def start() -> RunningStack:
                return start_stack(path, backend=self.backend, scale=experiment.scale, profile=experiment.profile,
                                   env=experiment.env or None, identity=RunIdentity())

            stack, reused, done = self.acquire(key, start)
            request.origin = "reused" if reused else "brought_up"  # the truth, even when a reset failed
            if reused:
                request.reset_lines = [f"renewed pooled stack {stack.run_id} (experiment {self.uses} on it): {line}"
                                       for line in done]
                done = list(request.reset_lines)
            if room_of(leased, default) != room:
                done.append(f"room {room!r} runs as {room_of(leased, default)!r}: the stack served earlier experiments")
            for line in done:
                request.emit(ev.Note(message=line))
            yield stack  # the pool, not the run, takes it down

        return Lease(leased, will_reuse, uses, open_stack)

    # --- Python-authored tests ---------------------------------------------------

    def handle(self, stack: str | Path = "audio-room", scale: Mapping[str, int] | None = None, profile: str | None = None,
              env: Mapping[str, Mapping[str, Any]] | None = None, base: str | Path | None = None,
              backend: str | None = None) -> StackHandle:
        """A StackHandle for a test: the running stack (reset) when the key matches, else a fresh one."""
        from chaos.authoring.handle import StackHandle
        from chaos.experiment.stackcheck import stack_file
        from chaos.stack import start_stack

        path = stack_file(str(stack), Path(base or Path.cwd()))
        kind = backend or self.backend
        key = StackKey.of(path, kind, scale, profile, env)
        running, reused, _ = self.acquire(key, lambda: start_stack(path, backend=kind, scale=scale, profile=profile, env=env))
        room = _start_room(path)  # the stack file's, never the toolkit's; a reused stack gives each test a room of its own
        if room is not None and self.uses > 1:
            room = f"{room}-{self.uses}"
        return StackHandle(running, room=room, reused=reused)


def _start_room(stack_file: Path) -> str | None:
    """The room the stack file's load start action uses when an experiment names none."""
    from chaos.stack import load_stack

    start = load_stack(stack_file).spec.load.get("start")
    room = start.params.get("room") if start is not None else None
    return str(room) if room is not None else None
