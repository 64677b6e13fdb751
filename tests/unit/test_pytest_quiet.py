"""A normal pytest run prints no warnings (pytest-asyncio's configuration included)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_run_with_async_tests_prints_no_warning(tmp_path: Path) -> None:
    async_tests = ROOT / "tests" / "unit" / "proxy" / "test_timer_unit.py"  # async tests, run by pytest-asyncio
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path),
                           str(async_tests)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output
