"""Experiment files: typed model, loading with positions, validation, JSON Schema.

The names below load on first use: the fault modules (chaos.faults) import
this package's leaf modules (fields, durations) while the experiment model
imports them, so importing the package itself must not pull the model in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see ("x as x": exported); at run time __getattr__ loads them
    from chaos.experiment.model import Experiment as Experiment
    from chaos.experiment.validate import ExperimentInvalid as ExperimentInvalid, Problem as Problem
    from chaos.experiment.validate import load_experiment as load_experiment, validate_file as validate_file
    from chaos.experiment.validate import validate_text as validate_text

_EXPORTS = {
    "Experiment": "chaos.experiment.model",
    "ExperimentInvalid": "chaos.experiment.validate",
    "Problem": "chaos.experiment.validate",
    "load_experiment": "chaos.experiment.validate",
    "validate_file": "chaos.experiment.validate",
    "validate_text": "chaos.experiment.validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'chaos.experiment' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
