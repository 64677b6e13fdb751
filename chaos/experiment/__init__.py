"""Experiment files: typed model, loading with positions, validation, JSON Schema."""

from chaos.experiment.model import Experiment
from chaos.experiment.validate import ExperimentInvalid, Problem, load_experiment, validate_file, validate_text

__all__ = ["Experiment", "ExperimentInvalid", "Problem", "load_experiment", "validate_file", "validate_text"]
