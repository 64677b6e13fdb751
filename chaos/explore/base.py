"""The base experiment of an exploration, and the experiments made from it with a schedule as their method.

The base gives the stack, the load, the steady state and the invariants
(recovery assertions, history checks, abort conditions); its own method is
replaced by each schedule. Every experiment made here goes through the same
checks as a file given to ``roomquake validate`` (chaos.experiment.stackcheck),
so what explore runs and what it writes are valid experiment files.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import UsageError
from chaos.experiment import model as m
from chaos.problems import shown
from chaos.yamldoc import Document, Positions, SyntaxProblem, read_document


class BaseInvalid(UsageError):
    """The base experiment cannot be explored (invalid, or its checks refer to its own method)."""


@dataclass(frozen=True)
class Base:
    path: Path
    data: dict[str, Any]  # the file as plain data
    experiment: m.Experiment  # the file without its method
    backend: str
    dropped_steps: int  # steps of the file's own method, replaced by each schedule

    def make(self, method: list[dict[str, Any]], seed: int) -> tuple[dict[str, Any], m.Experiment]:
        """The base with ``method`` and ``seed``, as plain data and as a checked experiment."""
        data = copy.deepcopy(self.data)
        data["method"] = method
        data["seed"] = seed
        return data, _checked(self.path, data, self.backend)


def _checked(path: Path, data: dict[str, Any], backend: str, positions: Positions | None = None) -> m.Experiment:
    from chaos.experiment.stackcheck import check_document

    experiment, problems = check_document(Document(str(path), data, positions or Positions()), backend)
    if experiment is None:
        lines = shown(problems)
        raise BaseInvalid(lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(problems) - 1} more)")
    return experiment


def load_base(path: str | Path, backend: str) -> Base:
    """Read and check ``path``; its method is dropped (a check that refers to a step of it is refused)."""
    try:
        doc = read_document(path, "experiment file")
    except SyntaxProblem as err:
        raise BaseInvalid(f"{path}:{err.line}:{err.col}: {err.message}") from None
    if not isinstance(doc.data, dict):
        raise BaseInvalid(f"{path}:1:1: an experiment file is a mapping")
    from chaos.experiment.stackcheck import check_document

    _, problems = check_document(doc, backend)  # the file as written, with positions, first
    if problems:
        raise BaseInvalid(shown(problems)[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    data = dict(doc.data)
    dropped = len(data.get("method") or [])
    data["method"] = []
    try:
        experiment = _checked(Path(path), data, backend, doc.positions)
    except BaseInvalid as err:
        raise BaseInvalid(f"{err} - explore replaces the base's method, so its checks cannot refer to its steps") from None
    return Base(Path(path), data, experiment, backend, dropped)
