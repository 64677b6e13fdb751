"""Fuzzing experiment files: every outcome is a valid model or located problems, never a traceback.

Inputs (strategies in tests/fuzzing.py): random YAML trees, structure
mutations of the shipped experiments, byte mutations of the shipped files.
Every example must end in ``(experiment, [])`` or ``(None, problems)``, each
problem one located line, within bounded CPU time and memory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import roomquake_fuzzing as fz
import yaml
from hypothesis import given

from chaos import yamldoc
from chaos.cli.checking import check
from chaos.experiment.validate import validate_text

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))


def judged(outcome: tuple[Any, list[Any]]) -> None:
    experiment, problems = outcome
    assert (experiment is None) == bool(problems), (experiment, problems)
    for problem in problems:
        fz.one_located_line(str(problem))


@fz.FUZZ
@given(fz.TREES)
def test_random_yaml_trees(tree: Any) -> None:
    judged(fz.bounded(validate_text, yaml.safe_dump(tree, allow_unicode=True), "fuzz.yaml"))


@fz.FUZZ
@given(fz.mutate(*(yamldoc.parse_text(p.read_text()).data for p in SHIPPED)))
def test_structure_mutations_of_shipped_experiments(data: Any) -> None:
    judged(fz.bounded(validate_text, yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "fuzz.yaml"))


@fz.FUZZ
@given(fz.corrupt([p.read_bytes() for p in SHIPPED]))
def test_byte_mutations_of_shipped_experiments(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"  # through a file: decoding, the stack check and its lookup too
        path.write_bytes(blob)
        checked = fz.bounded(check, path)
    judged((checked.experiment, checked.problems))
