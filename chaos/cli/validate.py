"""``roomquake validate FILE...``: check experiment files without running anything."""

from __future__ import annotations

import json
import sys

import click

from chaos.experiment.stackcheck import validate_with_stack as validate_file


@click.command(name="validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
def command(files: tuple[str, ...], as_json: bool) -> None:
    """Check experiment files; print every problem as file:line:col: field: message.

    \b
    Example:
      roomquake validate experiments/*.yaml
    """
    report = []
    bad = 0
    for path in files:
        _, problems = validate_file(path)
        bad += bool(problems)
        report.append({"file": path, "ok": not problems, "problems": [p.__dict__ for p in problems]})
        if not as_json:
            for problem in problems:
                click.echo(str(problem))
            if not problems:
                click.echo(f"{path}: ok")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif len(files) > 1:
        click.echo(f"{len(files) - bad} valid, {bad} invalid", err=True)
    sys.exit(1 if bad else 0)
