"""``roomquake list [DIR]``: the experiments in a folder, with title, tags and validity."""

from __future__ import annotations

from pathlib import Path

import click

from chaos.errors import UsageError
from chaos.problems import plural


def experiment_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml", ".json") and p.is_file())


@click.command(name="list")
@click.argument("folder", required=False, default="experiments", type=click.Path(file_okay=False))
def command(folder: str) -> None:
    """List experiment files in FOLDER (default: experiments/).

    \b
    Example:
      roomquake list experiments
    """
    base = Path(folder)
    if not base.is_dir():
        raise UsageError(f"{folder}: no such folder")
    files = experiment_files(base)
    if not files:
        click.echo(f"{folder}: no experiment files (*.yaml, *.yml, *.json)")
        return
    from chaos.cli.checking import check

    width = max(len(p.name) for p in files)
    for path in files:
        checked = check(path)
        experiment, problems = checked.experiment, checked.problems
        if experiment is None:
            click.echo(f"{path.name:<{width}}  INVALID ({plural(len(problems), 'problem')}; roomquake validate {path})")
            continue
        tags = f"  [{', '.join(experiment.tags)}]" if experiment.tags else ""
        weakness = "  (demonstrates a known weakness)" if experiment.known_weakness else ""
        click.echo(f"{path.name:<{width}}  {experiment.title}{tags}{weakness}")
