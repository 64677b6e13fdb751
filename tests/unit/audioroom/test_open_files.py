"""A crowd or an edge holds one socket per listener: each raises its open-file limit to the hard limit."""

import subprocess
import sys
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parents[3] / "docker"

# Run in a child so the test process keeps its own limits.
PROGRAM = """
import logging, resource, sys
from audioroom import runtime
soft, hard = {soft}, {hard}
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print(runtime.raise_open_files(logging.getLogger("t")), *resource.getrlimit(resource.RLIMIT_NOFILE))
"""


def raised(soft: int, hard: int) -> list[int]:
    out = subprocess.run([sys.executable, "-c", PROGRAM.format(soft=soft, hard=hard)], cwd=DOCKER_DIR,
                         capture_output=True, text=True, check=True).stdout
    return [int(v) for v in out.split()]


def test_the_soft_limit_is_raised_to_the_hard_one():
    assert raised(256, 4096) == [4096, 4096, 4096]


def test_a_limit_already_at_its_ceiling_is_left_as_it_is():
    assert raised(2048, 2048) == [2048, 2048, 2048]

