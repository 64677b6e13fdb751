"""A crowd and an edge hold one socket per listener: each starts by raising its open-file limit to the hard one.

The services are started with a soft limit of 256 (the usual default is 1,024), and their own
/proc/<pid>/limits is read once they answer /health.
"""

from __future__ import annotations

import resource
from pathlib import Path

LOW_SOFT = 256


def low_soft_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LOW_SOFT, hard))


def open_files(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


def test_the_crowd_and_the_edge_raise_their_open_file_limit(make_stack):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard > LOW_SOFT, "this machine's hard limit leaves nothing to raise"
    stack = make_stack({"control": 1, "edge": 1, "crowd": 1})
    for name in ("edge-1", "crowd-1"):
        stack.start(name, preexec=low_soft_limit)
        popen = stack.procs[name].popen
        assert popen is not None
        soft_now, hard_now = open_files(popen.pid)
        assert soft_now == hard_now != str(LOW_SOFT), (name, soft_now, hard_now)
