"""chaos/ is clean under ``mypy --strict`` (the configuration in pyproject.toml's [tool.mypy]); any error fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Files left out for now, each because another change was rewriting it while this test was written (issue 19's
# fast bring-up); each is to be typed and taken out of this list, never added to.
NOT_YET: tuple[str, ...] = (
    "chaos/containers.py",
    "chaos/stack/docker.py",
    "chaos/stack/health.py",
    "chaos/stack/renew.py",
    "chaos/stack/spec.py",
)


def test_chaos_is_clean_under_mypy_strict() -> None:
    excluded = [arg for path in NOT_YET for arg in ("--exclude", f"^{path}$")]
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *excluded, "chaos"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    # --exclude only keeps a file from being listed: one imported by a checked module is still read, and its
    # errors reported; those of the files above are not counted here.
    errors = [line for line in done.stdout.splitlines()
              if ": error:" in line and not line.startswith(NOT_YET)]
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2: mypy itself failed (config, crash)
    assert not errors, "\n".join(errors)
    assert "source files" in done.stdout, done.stdout[-2000:]  # it did check (the summary line names the count)
