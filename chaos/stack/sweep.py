"""End the recorded stacks of dead owners: half-up ones and ones a killed run had brought up (never kept ones)."""

from __future__ import annotations

from typing import Any

from chaos.labels import OWNER_PID, owner_alive
from chaos.stack import registry
from chaos.stack.errors import StackError


def _owner(record: dict[str, Any]) -> dict[str, str]:
    """The owner labels of a record (records written before they carried ``owner`` say so in their docker state)."""
    if record.get("owner"):
        return dict(record["owner"])
    return {}


def end_pending(record: dict[str, Any], dry_run: bool = False) -> str:
    """End what a bring-up whose owner died before finishing started; returns what was (or would be) done."""
    run_id = record["run_id"]
    owner = _owner(record)
    if owner_alive(owner):
        raise StackError(f"run {run_id} is still being brought up by pid {owner.get(OWNER_PID, '?')}")
    verb = "would end" if dry_run else "ended"
    if record.get("backend") == "docker":
        if not dry_run:
            _remove_labelled(run_id)
            registry.remove(run_id)
        return f"{run_id}: {verb} the containers and network of a docker bring-up whose owner pid {owner.get(OWNER_PID, '?')} died"
    if record.get("backend") == "swarm":
        from chaos.stack.swarm_clean import end_pending as end_swarm

        line = end_swarm(record, dry_run)
        if not dry_run:
            registry.remove(run_id)  # after the services: a failure leaves the record for the next try
        return line
    from chaos.stack.local import LocalBackend

    procs = {n: p for n, p in record.get("state", {}).get("procs", {}).items() if "pid" in p}
    if not dry_run:
        # Same teardown as a live stack: by process group, pid reuse guarded by start time.
        LocalBackend(None, run_id, procs=procs).teardown()  # type: ignore[arg-type]
        registry.remove(run_id)
    return f"{run_id}: {verb} {len(procs)} process group(s) of a bring-up whose owner pid {owner.get(OWNER_PID, '?')} died"


def _remove_labelled(run_id: str) -> None:
    """Every container, network and volume labelled with ``run_id`` (its owner is dead)."""
    from chaos.clean import clean
    from chaos.engine import connect

    client = connect(timeout=30)
    try:
        clean(client, include_live=True, only_runs={run_id})
    finally:
        client.close()


def _dead_unkept(record: dict[str, Any]) -> bool:
    owner = _owner(record)
    return bool(owner) and not record.get("keep") and not owner_alive(owner)


def sweep_dead_stacks(dry_run: bool = False) -> list[str]:
    """End every recorded stack whose owner died and that was not kept (``stack up``); live ones are never touched.

    A half-up stack (its owner died mid bring-up) and a stack a killed run
    had brought up are both ended: their processes (local) or labelled
    resources (docker), and their record.
    """
    done = []
    for record in registry.records():
        if record.get("pending"):
            if not owner_alive(_owner(record)):
                done.append(end_pending(record, dry_run=dry_run))
            continue
        if not _dead_unkept(record):
            continue
        run_id = record["run_id"]
        owner_pid = _owner(record).get(OWNER_PID, "?")
        if dry_run:
            done.append(f"{run_id}: would take down the {record.get('backend')} stack of dead owner pid {owner_pid}")
            continue
        try:
            down(run_id)
        except Exception as err:  # noqa: BLE001 - its resources may be gone already; forget the record
            registry.remove(run_id)
            done.append(f"{run_id}: record of dead owner pid {owner_pid} removed ({err})")
            continue
        done.append(f"{run_id}: took down the {record.get('backend')} stack of dead owner pid {owner_pid}")
    return done


def down(run_id: str = "latest") -> str:
    """Tear down a recorded stack (one whose owner died mid bring-up: what it started); returns its run id."""
    from chaos.stack.bringup import attach_record

    if run_id != "latest":
        record = registry.load(run_id)
        if record.get("pending"):  # its owner died mid bring-up (a live one raises)
            end_pending(record)
            return run_id
    running = attach_record(run_id)
    running.down()
    return running.run_id
