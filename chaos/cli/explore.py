"""``roomquake explore BASE``: search fault schedules for one that breaks the base experiment's invariants."""

from __future__ import annotations

import sys

import click

from chaos.experiment.durations import parse_duration

EXIT = {"nothing": 0, "found": 1, "flaky": 1, "unconfirmed": 1, "interrupted": 3}


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


def _names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@click.command(name="explore")
@click.argument("base")
@click.option("--budget", required=True, callback=_seconds, help="Search time, e.g. 10m (shrinking has as much again).")
@click.option("--seed", type=int, help="Seed of the search (default: drawn and printed); with the example database it replays a run.")
@click.option("--backend", type=click.Choice(["docker", "local"]), help="Default: docker when an engine answers, else local.")
@click.option("--reruns", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Runs of the smallest failure before it is reported: found only if every one fails, else flaky.")
@click.option("--out", "out_dir", default="explored", show_default=True, help="Where the found experiment file is written.")
@click.option("--shrink-budget", callback=_seconds, help="Time for shrinking a failure (default: the budget).")
@click.option("--max-faults", type=click.IntRange(1, 10), default=3, show_default=True, help="Faults per schedule, at most.")
@click.option("--horizon", callback=_seconds, default="8s", show_default=True, help="Latest start of a fault in the method.")
@click.option("--min-for", callback=_seconds, default="500ms", show_default=True,
              help="Shortest a fault lasts (shrinking goes no lower).")
@click.option("--max-for", callback=_seconds, default="8s", show_default=True, help="Longest a fault lasts.")
@click.option("--total-loss", is_flag=True,
              help="Also draw schedules that take every instance of a service with several down at once "
                   "(by default one stays up: losing them all only shows they are all gone).")
@click.option("--small-first", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of the budget for trying every fault alone, then ordered pairs, before Hypothesis draws "
                   "(0: Hypothesis from the start).")
@click.option("--faults", callback=_names, help="Fault kinds to draw from, comma-separated (default: every kind that applies).")
@click.option("--services", callback=_names, help="Services to fault (default: all but the fault proxy and the load generator).")
@click.option("--links", callback=_names, help="Links to fault (default: every link of the stack file).")
@click.option("--journal-dir", type=click.Path(file_okay=False), help="Where journals go (default: ./journals).")
def command(base: str, budget: float, seed: int | None, backend: str | None, reruns: int, out_dir: str,
            shrink_budget: float | None, max_faults: int, horizon: float, min_for: float, max_for: float, total_loss: bool,
            small_first: float, faults: list[str] | None,
            services: list[str] | None, links: list[str] | None, journal_dir: str | None) -> None:
    """Search the fault schedules BASE's stack allows for the smallest one that breaks BASE's invariants.

    BASE gives the stack, the load, the steady state and the invariants (recovery,
    history, abort conditions); its method is replaced by each schedule. A failure
    is shrunk, rerun (--reruns) and written to --out as an experiment file that
    `roomquake run` reproduces. Exit 0 nothing found, 1 found or flaky, 2 invalid
    input, 3 interrupted (everything rolled back; what was found is kept).

    \b
    Examples:
      roomquake explore base.yaml --budget 10m --backend local
      roomquake explore base.yaml --budget 5m --seed 7 --faults kill,pause,down
    """
    from chaos.cli.checking import check, refuse_if_invalid

    if min_for > max_for:
        raise click.BadParameter(f"{min_for:g}s is longer than --max-for ({max_for:g}s)", param_hint="--min-for")
    refuse_if_invalid([check(base, backend)])  # exit 2 with file:line:col, nothing started
    from chaos.explore.display import for_terminal, summary
    from chaos.explore.schedule import Limits
    from chaos.explore.session import explore

    with for_terminal(sys.stdout) as display:  # a live panel on a terminal, a line per run in a log
        report = explore(base, budget, backend=backend, seed=seed, reruns=reruns, out_dir=out_dir,
                         shrink_budget_s=shrink_budget, limits=Limits(max_faults, horizon, min_for, max_for, total_loss),
                         small_first=small_first, faults=faults, services=services, links=links, journal_dir=journal_dir,
                         display=display)
    for line in summary(report):
        click.echo(line)
    sys.exit(EXIT.get(report.status, 1))
