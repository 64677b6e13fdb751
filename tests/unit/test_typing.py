"""chaos/ is clean under ``mypy --strict`` (the configuration in pyproject.toml's [tool.mypy]); any error fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_chaos_is_clean_under_mypy_strict() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "chaos"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2: mypy itself failed (config, crash)
    assert not errors, "\n".join(errors)
    assert "source files" in done.stdout, done.stdout[-2000:]  # it did check (the summary line names the count)
