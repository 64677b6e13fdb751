"""Fuzzing stack files: every outcome is a valid stack or one located StackFileError, never a traceback.

The strategies of tests/fuzzing.py applied to the reference stack file:
random YAML trees, structure mutations and byte mutations, with CPU time
and memory bounded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import roomquake_fuzzing as fz
import yaml
from hypothesis import given

from chaos import yamldoc
from chaos.stack.errors import StackFileError
from chaos.stack.spec import load_stack, loads_stack

REFERENCE = Path(__file__).resolve().parents[3] / "docker" / "stack.yaml"


def judged(call: Any, *args: Any) -> None:
    try:
        stack = fz.bounded(call, *args)
    except StackFileError as err:
        fz.one_located_line(str(err).split(" (and ", 1)[0])
    else:
        assert stack.spec.services


@fz.FUZZ
@given(fz.TREES)
def test_random_yaml_trees(tree: Any) -> None:
    judged(loads_stack, yaml.safe_dump(tree, allow_unicode=True), "stack.yaml")


@fz.FUZZ
@given(fz.mutate(yamldoc.parse_text(REFERENCE.read_text()).data))
def test_structure_mutations_of_the_reference_stack(data: Any) -> None:
    judged(loads_stack, yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "stack.yaml")


@fz.FUZZ
@given(fz.corrupt([REFERENCE.read_bytes()]))
def test_byte_mutations_of_the_reference_stack(blob: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stack.yaml"
        path.write_bytes(blob)
        judged(load_stack, path)
