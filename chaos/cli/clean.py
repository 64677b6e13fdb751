"""`roomquake clean`: finish dead runs' rollback, end their local processes, remove their Docker resources."""

from __future__ import annotations

import sys
from collections import Counter

import click

from chaos.clean import CleanReport, Resource, clean, describe_owner
from chaos.engine import connect
from chaos.errors import EngineError, RoomquakeError, UsageError


class CleanFailed(RoomquakeError):
    exit_code = 1


def _summary(resources: list[Resource]) -> str:
    counts = Counter(r.kind for r in resources)
    return ", ".join(f"{counts[kind]} {kind}{'s' if counts[kind] != 1 else ''}" for kind in ("container", "network", "volume") if counts[kind])


@click.command("clean")
@click.option("--all", "include_live", is_flag=True, help="Also remove resources of live runs and kept (game-day) stacks.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before --all removes live runs' resources.")
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be removed.")
def command(include_live: bool, yes: bool, dry_run: bool) -> None:
    """Remove everything dead runs left behind, and nothing else.

    First a runner killed mid-fault has its rollback finished (toxics removed,
    paused instances resumed, a stack it brought up taken down) and a local
    stack whose owner died during bring-up has its processes ended. Then, in
    Docker: a resource is roomquake's when it carries the label io.roomquake.run; its
    run is dead when the process that created it is gone. Live runs,
    io.roomquake.keep=1 stacks and unlabelled resources are never touched
    (--all removes live and kept runs' resources too).

    \b
    Examples:
      roomquake clean             # after a run was killed
      roomquake clean --dry-run
      roomquake clean --all --yes
    """
    swept = _sweep(dry_run)
    try:
        client = connect()
    except EngineError as err:
        # A host without Docker (local backend only) still gets the sweeps above.
        click.echo(f"skipped Docker resources: {err.one_line()}", err=True)
        return
    if include_live and not dry_run and not yes:
        preview = clean(client, include_live=True, dry_run=True)
        if not preview.removed:
            if not swept:
                click.echo("nothing to clean")
            return
        live = {r.run_id for r in preview.removed if r.owner_alive}
        if live:
            if not sys.stdin.isatty():
                raise UsageError(f"--all would remove resources of {len(live)} live run(s): add --yes to confirm")
            click.confirm(f"remove {_summary(preview.removed)}, including {len(live)} live run(s)?", abort=True)
    report = clean(client, include_live=include_live, dry_run=dry_run)
    _print(report, dry_run, swept)
    if report.failed:
        raise CleanFailed(f"{len(report.failed)} resource(s) could not be removed; first: {report.failed[0][1]}")


def _sweep(dry_run: bool) -> int:
    """Dead runners' ledgers and dead owners' half-up local stacks (both: dead owners only, even with --all)."""
    from chaos.run.ledger import sweep_dead_runs
    from chaos.stack.sweep import sweep_dead_stacks

    runners = sweep_dead_runs(dry_run=dry_run)
    for line in runners:
        click.echo(f"{'would finish' if dry_run else 'finished'} rollback of dead runner {line}")
    bringups = sweep_dead_stacks(dry_run=dry_run)
    for line in bringups:
        click.echo(f"dead owner's stack {line}")
    return len(runners) + len(bringups) + _sweep_swarm(dry_run)


def _sweep_swarm(dry_run: bool) -> int:
    """Dead runs' swarm services, networks and configs; then local clusters whose up (or down) was killed."""
    from chaos.cluster import sweep_dead_clusters
    from chaos.stack.swarm_clean import sweep

    lines = sweep(dry_run=dry_run) + sweep_dead_clusters(dry_run=dry_run)
    for line in lines:
        click.echo(line)
    return len(lines)


def _print(report: CleanReport, dry_run: bool, swept: int = 0) -> None:
    verb = "would remove" if dry_run else "removed"
    for run_id, resources in sorted(report.runs(report.removed).items()):
        state = "live" if resources[0].owner_alive else f"dead, {describe_owner(resources[0])} gone"
        click.echo(f"{verb} run {run_id} ({state}): {_summary(resources)}")
    for resource, reason in report.failed:
        click.echo(f"could not remove {resource.kind} {resource.name}: {reason}", err=True)
    if not report.removed and not report.failed and not swept:
        click.echo("nothing to clean")
    if report.kept:
        click.echo(f"kept {_summary(report.kept)} of {len(report.runs(report.kept))} live run(s)")
