"""The run's ledger: what a runner has injected and not yet undone, on disk.

Rollback in ``finally`` covers every exit a process can observe; SIGKILL is
the one it cannot. So the runner writes each undo to a small JSON file as
soon as a fault part is in place and drops it once undone. The next run (or
``sweep_dead_runs`` from ``roomquake clean``) finds ledgers whose owner
process is dead and finishes their work: replays the undos on an attached
stack (toxics removed, paused instances resumed) through the same undo path
as the runner (chaos.faults.undo), or takes down a stack the dead run had
brought up.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.labels import RunIdentity, owner_alive

if TYPE_CHECKING:  # chaos.faults loads every fault module: only when a ledger is replayed
    from chaos.faults.base import Undo

PREFIX = "runner-"


def ledger_dir() -> Path:
    from chaos.stack.registry import state_dir

    return state_dir()


class Ledger:
    def __init__(self, identity: RunIdentity, folder: Path | None = None) -> None:
        self.identity = identity
        self.path = (folder or ledger_dir()) / f"{PREFIX}{identity.run_id}.json"
        self.record: dict[str, Any] = {"run_id": identity.run_id, "labels": identity.labels(), "undo": []}
        self._lock = threading.Lock()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record), encoding="utf-8")
        tmp.replace(self.path)

    def stack(self, stack_run_id: str, backend: str, attached: bool, proxy_url: str) -> None:
        with self._lock:
            self.record.update(stack_run_id=stack_run_id, backend=backend, attached=attached, proxy_url=proxy_url)
            self._write()

    def add(self, undo: Undo) -> None:
        with self._lock:
            self.record["undo"].append(list(undo))
            self._write()

    def done(self, undo: Undo) -> None:
        with self._lock:
            with contextlib.suppress(ValueError):
                self.record["undo"].remove(list(undo))
            self._write()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _finish(record: dict[str, Any]) -> str:
    """Undo or tear down what a dead runner left; returns a line saying what was done."""
    run_id = record.get("run_id", "?")
    stack_run = record.get("stack_run_id")
    if not stack_run:
        return f"{run_id}: no stack recorded (died during bring-up); roomquake clean removes labelled containers"
    undos = [tuple(undo) for undo in record.get("undo", [])]
    if not record.get("attached"):
        from chaos.faults.undo import outlives_stack
        from chaos.stack import down

        lasting = [undo for undo in undos if outlives_stack(undo)]  # a lost node stays lost when the stack goes
        said = _replay(run_id, stack_run, lasting) + "; " if lasting else ""
        try:
            down(stack_run)
        except Exception as err:  # noqa: BLE001 - already gone is fine
            return f"{said}{run_id}: stack {stack_run} already gone ({err})"
        return f"{said}{run_id}: took down stack {stack_run} it had brought up"
    return _replay(run_id, stack_run, undos)


def _replay(run_id: Any, stack_run: str, undos: list[Undo]) -> str:
    from chaos.faults import FaultContext
    from chaos.faults.undo import replay

    stack = _reattach(stack_run)
    with contextlib.ExitStack() as exits:
        # the registry knows the proxy's token; one attempt: a dead proxy must not hold up the sweep
        ctx = FaultContext(stack, lambda: exits.enter_context(stack.proxy_client(attempts=1, retry_for=1.0)),
                           run_id=str(run_id))
        undone, failed = replay(undos, ctx)
    return f"{run_id}: undid {undone} fault part(s) on stack {stack_run}" + (f", {len(failed)} failed" if failed else "")


def _reattach(stack_run: str) -> Any:
    """The stack a dead runner had attached to: a recorded run, or a Compose project (``compose:NAME``)."""
    from chaos.compose.attach import attach_project, project_of

    project = project_of(stack_run)
    if project is not None:
        return attach_project(project)
    from chaos.stack.bringup import attach_record

    return attach_record(stack_run)


def _describe(record: dict[str, Any]) -> str:
    """What ``_finish`` would do, without doing it (``roomquake clean --dry-run``)."""
    run_id = record.get("run_id", "?")
    stack_run = record.get("stack_run_id")
    if not stack_run:
        return f"{run_id}: no stack recorded (died during bring-up)"
    if not record.get("attached"):
        return f"{run_id}: would take down stack {stack_run} it had brought up"
    return f"{run_id}: would undo {len(record.get('undo', []))} fault part(s) on stack {stack_run}"


def sweep_dead_runs(folder: Path | None = None, dry_run: bool = False) -> list[str]:
    """Finish the work of every runner that died without rolling back; never touches live runs.

    ``dry_run`` only says what would be done and leaves the ledgers in place.
    """
    done = []
    for path in sorted((folder or ledger_dir()).glob(f"{PREFIX}*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if owner_alive(record.get("labels", {})):
            continue
        if dry_run:
            done.append(_describe(record))
            continue
        try:
            done.append(_finish(record))
        except Exception as err:  # noqa: BLE001 - one bad ledger must not block the others
            done.append(f"{record.get('run_id', path.name)}: could not finish: {err}")
        path.unlink(missing_ok=True)
    return done
