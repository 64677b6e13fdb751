from __future__ import annotations

import pytest


@pytest.fixture
def gameday(cli_process):
    """``roomquake gameday ARGS`` in a subprocess we type into (see tests/local/conftest.py)."""
    return lambda args: cli_process(["gameday", *args])
