from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"


@pytest.fixture
def run_process(cli_process):
    """``roomquake run ARGS`` in a subprocess (see CliProcess in tests/local/conftest.py)."""
    return lambda args: cli_process(["run", *args])
