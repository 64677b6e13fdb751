"""``roomquake report JOURNAL``: the run's HTML report (timeline, assertions, verdict, environment)."""

from __future__ import annotations

import click

from chaos.report import default_path, write_report


@click.command(name="report")
@click.argument("journal", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write the HTML (default: the journal's path with .html).")
def command(journal: str, output: str | None) -> None:
    """Write one self-contained HTML report for the run recorded in JOURNAL.

    The file has no external resource: open it in any browser, attach it to
    a ticket or keep it as a CI artifact.

    \b
    Examples:
      roomquake report journals/20261126-011422-9c769c.json
      roomquake report journals/20261126-011422-9c769c.json -o edge-loss.html
    """
    path = write_report(journal, output or default_path(journal))
    click.echo(str(path))
