"""Node.js clients against our server: ``node_project`` from tests/compat/harness.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "roomquake_compat_harness"
if _NAME not in sys.modules:  # the docker tier's conftest loads the same file
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).resolve().parents[2] / "compat" / "harness.py")
    assert _spec is not None and _spec.loader is not None
    sys.modules[_NAME] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_NAME])

node_project = sys.modules[_NAME].node_project
