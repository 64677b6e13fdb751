"""Experiment files checked the same way by every verb that takes them (validate, run, gameday, list).

Each file is read and parsed first (chaos.yamldoc: no pydantic, no stack), so
a file that is missing, a folder, too big or hostile is refused in the time
it takes to start Python; only a file that parses loads the typed model and
its stack (chaos.experiment.stackcheck).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from chaos.problems import Problem, plural, shown
from chaos.yamldoc import SyntaxProblem, read_document

if TYPE_CHECKING:
    from chaos.experiment.model import Experiment

# The exit code of every verb for input it refuses (invalid, missing, unreadable, a folder).
INVALID = 2


@dataclass(frozen=True)
class Checked:
    path: str
    experiment: Experiment | None
    problems: list[Problem]


def check(path: str | Path, backend: str | None = None) -> Checked:
    """One file: its problems (model, cross-references, against its stack and ``backend``), or the experiment."""
    try:
        doc = read_document(path, "experiment file")
    except SyntaxProblem as err:
        return Checked(str(path), None, [Problem(err.line, err.col, str(path), "file", err.message)])
    from chaos.experiment.stackcheck import check_document

    experiment, problems = check_document(doc, backend)
    return Checked(str(path), experiment, problems)


def check_all(paths: Iterable[str], backend: str | None = None) -> list[Checked]:
    return [check(path, backend) for path in paths]


def refuse_if_invalid(checked: list[Checked], what: str = "") -> None:
    """Print every problem (at most SHOWN per file) on stderr and exit INVALID when there is one."""
    problems = [p for c in checked for p in c.problems]
    if not problems:
        return
    for item in checked:
        for line in shown(item.problems):
            click.echo(line, err=True)
    click.echo(f"roomquake: error: {plural(len(problems), 'problem')}{what}; nothing was run", err=True)
    raise SystemExit(INVALID)
