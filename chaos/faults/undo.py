"""Undo as data, and the one path that undoes.

Every part of a fault returns what undoes it as a tuple of strings:
``("stack", "resume", "edge-2")``, ``("proxy", "remove_toxic", "crowd->edge-1", "rq.x.y.downstream")``.
The first two name an undo operation that a fault module registered
(``@undo_op("stack", "resume")``); the rest are its arguments. Being data,
an undo can be written to the run's ledger and replayed by another process
after a SIGKILL.

``undo_parts`` is the only code that undoes: the runner (at a step's
``for`` and at the end of every run), the authoring API (leaving a
``with faults.kill(...)`` block) and the ledger (finishing a dead runner's
work) all call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from chaos.faults.base import FaultContext, Injection, Undo

Op = Callable[..., None]  # (ctx, *args) -> None
_OPS: dict[tuple[str, str], Op] = {}
_OUTLIVE: set[tuple[str, str]] = set()  # undos of what a stack's teardown does not undo (a lost node, a drained one)
O = TypeVar("O", bound=Op)


def undo_op(target: str, name: str, outlives_stack: bool = False) -> Callable[[O], O]:
    """Register what an undo ``(target, name, *args)`` does: ``fn(ctx, *args)``.

    ``outlives_stack``: what it undoes survives the run's stack being taken
    down (a node of the cluster, not a container of the run), so a dead
    runner's ledger replays it even when it takes the stack down.
    """

    def add(fn: O) -> O:
        if (target, name) in _OPS:
            raise ValueError(f"undo {target}.{name} is registered twice")
        _OPS[(target, name)] = fn
        if outlives_stack:
            _OUTLIVE.add((target, name))
        return fn

    return add


def outlives_stack(undo: Undo) -> bool:
    return tuple(undo[:2]) in _OUTLIVE


def perform(undo: Undo, ctx: FaultContext) -> None:
    target, name, *args = undo
    try:
        op = _OPS[(target, name)]
    except KeyError:
        raise ValueError(f"unknown undo {undo!r}") from None
    op(ctx, *args)


def undo_parts(parts: Iterable[tuple[str, Undo | None]], ctx: FaultContext,
               undone: Callable[[Undo], None] | None = None) -> list[str]:
    """Undo parts, the newest first; one that fails does not stop the others.

    ``undone`` is told of each undo that succeeded (the runner drops it from
    its ledger). Returns the failures, one ``"hit: error"`` each.
    """
    errors = []
    for hit, undo in reversed(list(parts)):
        if undo is None:
            continue
        try:
            perform(undo, ctx)
        except Exception as err:  # noqa: BLE001 - keep undoing the rest; the failure is reported
            errors.append(f"{hit}: {err}")
            continue
        if undone is not None:
            undone(undo)
    return errors


def roll_back(injection: Injection, ctx: FaultContext, now: Callable[[], float] = time.monotonic,
              undone: Callable[[Undo], None] | None = None) -> list[str]:
    """Undo every part of one injection (once: a second call does nothing) and record when and how it went."""
    if injection.rolled_back:
        return []
    injection.rollback_errors = undo_parts(injection.parts, ctx, undone)
    injection.rolled_back_t = now()
    return injection.rollback_errors


def replay(undos: Iterable[Undo], ctx: FaultContext) -> tuple[int, list[str]]:
    """Undos read back from a ledger (in the order they were done): how many were undone, and the failures."""
    parts = [(" ".join(undo[2:3]) or " ".join(undo), undo) for undo in undos]
    errors = undo_parts(parts, ctx)
    return len(parts) - len(errors), errors

