"""``roomquake history [RUN_ID]``: check the listeners' histories of a running stack now (on demand)."""

from __future__ import annotations

import json
import click

from chaos.errors import UsageError
from chaos.experiment.durations import parse_duration
from chaos.run.histories import collect, declared


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f}s"


@click.command(name="history")
@click.argument("run_id", default="latest")
@click.option("--room", default=None, help="The room whose listeners to check (default: the stack file's load room).")
@click.option("--back-within", "back_within", default="10s", show_default=True,
              help="Report the share of listeners back within this long of each relaunch.")
@click.option("--json", "as_json", is_flag=True, help="The checker's findings as JSON.")
def command(run_id: str, room: str | None, back_within: str, as_json: bool) -> None:
    """Read every listener's history from a running stack and report what the checker finds.

    The same checker a run uses at its end (chaos/checkers/history.py): per
    room, listeners that never heard the relaunched room, each listener's
    largest gap, duplicates, frames out of order, split brain, and the share
    of listeners back within N seconds of each relaunch.

    \b
    Examples:
      roomquake history                      # the latest stack, the room its stack file's load uses
      roomquake history 20261130-025354-fa58fd --room launch-2 --json
    """
    from chaos.stack.bringup import attach_record

    try:
        window = parse_duration(back_within)
    except ValueError as err:
        raise UsageError(f"--back-within: {err}") from None
    stack = attach_record(run_id)
    if not declared(stack):
        raise UsageError(f"stack {stack.spec.name} declares no history.listeners source (see docs/stack-file.md)")
    if room is None:  # the stack file's, never the toolkit's
        start = stack.spec.load.get("start")
        found = start.params.get("room") if start is not None else None
        if found is None:
            raise UsageError(f"stack {stack.spec.name}'s load start action names no room: give --room")
        room = str(found)
    collected = collect(stack, room, [window])
    if as_json:
        click.echo(json.dumps(collected.to_json(), indent=1))
        return
    for error in collected.errors:
        click.echo(f"warning: {error}", err=True)
    report = collected.report
    if report is None:
        raise UsageError(f"no listener history of room {room} could be read")
    click.echo(f"room {report.room}: {report.listeners} listeners ({report.active} listening, {report.gave_up} gave up), "
               f"read from {', '.join(collected.instances)}")
    click.echo(f"  largest gap per listener: max {_seconds(report.max_gap_s)}, p99 {_seconds(report.max_gap_p99_s)}, "
               f"p50 {_seconds(report.max_gap_p50_s)}")
    click.echo(f"  duplicates {report.duplicates}, out of order {report.out_of_order}, split brain {report.split_brain_count}")
    for found in report.split_brain:
        click.echo(f"    split brain: {found.listener} heard generation {found.generation} after {found.after} ({found.edge})")
    for r in report.relaunches:
        fraction = r.back_within.get(f"{window:g}")
        shown = "-" if fraction is None else f"{fraction:.0%}"
        click.echo(f"  relaunch to generation {r.generation} ({r.reason or ('inferred' if r.inferred else '-')}): "
                   f"{r.listeners} listeners before, {shown} back within {back_within}, {r.never_count} never")
    if report.never_heard_count:
        click.echo(f"  never heard the relaunched room: {report.never_heard_count} "
                   f"(e.g. {', '.join(report.never_heard_relaunch[:5])})")
    if report.truncated or report.dropped:
        click.echo(f"  capped histories: {report.truncated}, listeners dropped: {report.dropped}")
