"""``roomquake validate FILE...``: check experiment files without running anything."""

from __future__ import annotations

import json
import sys

import click

from chaos.problems import shown


@click.command(name="validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--backend", type=click.Choice(["docker", "local", "swarm"]),
              help="Also refuse what this backend cannot do (e.g. disconnect or squeeze on local processes).")
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
def command(files: tuple[str, ...], backend: str | None, as_json: bool) -> None:
    """Check experiment FILES; print every problem as file:line:col: field: message.

    Exit 0 when every file is valid, 2 when any is invalid, missing,
    unreadable or a folder (the code `run` exits with for them too).

    \b
    Examples:
      roomquake validate experiments/*.yaml
      roomquake validate --backend local experiments/*.yaml
    """
    from chaos.cli.checking import INVALID, check

    report = []
    bad = 0
    for path in files:
        problems = check(path, backend).problems
        bad += bool(problems)
        report.append({"file": path, "ok": not problems, "problems": [p.__dict__ for p in problems]})
        if not as_json:
            for line in shown(problems):
                click.echo(line)
            if not problems:
                click.echo(f"{path}: ok")
    if as_json:
        click.echo(json.dumps(report, indent=2))
    elif len(files) > 1:
        click.echo(f"{len(files) - bad} valid, {bad} invalid", err=True)
    sys.exit(INVALID if bad else 0)
