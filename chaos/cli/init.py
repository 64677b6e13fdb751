"""``roomquake init DIR``: a starting point for a project, from the experiments roomquake ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from chaos.errors import UsageError

README = """\
# Chaos experiments

Started with `roomquake init`: the experiments roomquake ships, to run as
they are or to copy and change. They run against the reference audio-room
stack that comes with roomquake (`stack: audio-room`); to test your own
system, write a stack file for it and point `stack:` at its path.

```sh
roomquake validate experiments/*.yaml      # every problem as file:line:col: field: message
roomquake run experiments/edge-loss.yaml   # --backend local|docker, --report for an HTML report
roomquake list experiments                 # titles and tags
pytest experiments/                        # each file as a test (roomquake's pytest plugin)
```

Exit codes: 0 passed, 1 deviated, 2 invalid input (nothing ran),
3 aborted, 4 errored. The docker backend needs a running Docker engine; the
local backend runs the services as processes and needs `redis-server` on
PATH. The file format, key by key: `experiments/README.md`.
"""


def plan(target: Path) -> dict[Path, Path | str]:
    """Destination -> source file (or text) for everything init writes."""
    from chaos import shipped

    files: dict[Path, Path | str] = {target / "README.md": README}
    for source in shipped.experiment_files():
        files[target / "experiments" / source.name] = source
    guide = shipped.experiments_dir() / "README.md"
    if guide.is_file():
        files[target / "experiments" / "README.md"] = guide
    return files


@click.command(name="init")
@click.argument("directory", default=".")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def command(directory: str, force: bool) -> None:
    """Copy the shipped experiments and a short README into DIRECTORY (default: here).

    Nothing is overwritten unless --force is given.

    \b
    Example:
      roomquake init chaos && cd chaos && roomquake run --backend local experiments/baseline.yaml
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{directory}: exists and is not a folder")
    files = plan(target)
    existing = sorted(str(dest) for dest in files if dest.exists())
    if existing and not force:
        raise UsageError(f"{existing[0]} already exists" + (f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""),
                         hint="use --force to overwrite, or another folder")
    for dest, source in files.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            shutil.copyfile(source, dest)
        else:
            dest.write_text(source, encoding="utf-8")
    count = sum(1 for dest in files if dest.suffix in (".yaml", ".yml", ".json"))
    click.echo(f"{target}: {count} experiments in {target / 'experiments'}, README.md")
    click.echo(f"next: cd {target} && roomquake validate experiments/*.yaml")
