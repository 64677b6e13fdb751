"""iptables rules inside one container's network namespace, each tagged so that it can be found and removed.

The kernel here has no netem, so packet faults are netfilter rules (the
``statistic`` match for loss, plain DROP for partitions), added with the
host's ``iptables`` run in the target's namespace (``nsenter -t PID -n``:
only the network namespace is entered, so the host's binary and its
backend, nf_tables or legacy, are used; both work in a container's
namespace). Every rule carries a comment naming the run and the step
(``rq.<run>.<step>``): removal deletes exactly the rules carrying it, and
nothing else, whoever added them.

Hand-written over a Python netfilter binding (python-iptables speaks only
the legacy backend; nftables bindings are not on PyPI): a few commands,
each one line a reader can paste.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence

from chaos.stack.errors import StackError

Rule = tuple[str, ...]  # chain first, then the match: ("INPUT", "-s", "10.0.0.3")
TIMEOUT_S = 20.0


def tag(run_id: str, step_id: str) -> str:
    """The comment every rule of one step carries (iptables comments: at most 256 characters)."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", f"rq.{run_id}.{step_id}")[:200]


def require() -> None:
    """Packet faults enter other processes' namespaces: root and the two tools, said in one line."""
    if os.geteuid() != 0:
        raise StackError("packet faults add iptables rules inside containers' network namespaces (nsenter): run as root")
    missing = [tool for tool in ("nsenter", "iptables") if shutil.which(tool) is None]
    if missing:
        raise StackError(f"packet faults need {' and '.join(missing)} on PATH (Debian: apt-get install -y iptables util-linux)")


def _iptables(pid: int, args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["nsenter", "-t", str(pid), "-n", "iptables", "-w", "5", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise StackError(f"{shlex.join(argv)}: no answer after {TIMEOUT_S:g}s") from None
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise StackError(f"{shlex.join(argv)}: {said[-1] if said else f'exit {done.returncode}'}")
    return done


def add(pid: int, rules: Sequence[Rule], comment: str) -> None:
    """Insert each rule (first in its chain, so it wins over what is there) with the step's comment, to DROP."""
    for chain, *match in rules:
        _iptables(pid, ["-I", chain, "1", *match, "-m", "comment", "--comment", comment, "-j", "DROP"])


def tagged(pid: int, comment: str) -> list[str]:
    """The rules in the namespace carrying ``comment`` (``iptables -S`` lines)."""
    listed = _iptables(pid, ["-S"]).stdout.splitlines()
    return [line for line in listed if line.startswith("-A ") and _comment_of(line) == comment]


def _comment_of(line: str) -> str | None:
    words = shlex.split(line)
    for i, word in enumerate(words[:-1]):
        if word == "--comment":
            return words[i + 1]
    return None


def remove(pid: int, comment: str) -> int:
    """Delete every rule carrying ``comment``; returns how many."""
    found = tagged(pid, comment)
    for line in found:
        words = shlex.split(line)
        _iptables(pid, ["-D", *words[1:]], check=False)  # gone meanwhile is fine; what is left is checked below
    left = tagged(pid, comment)
    if left:
        raise StackError(f"iptables rules tagged {comment} are still there after removal: {left[0]}")
    return len(found)
