"""The host operations a local cluster is made of: commands, root, mounts, processes.

Network plumbing goes through iproute2 and iptables (the tools every Linux
host has and every reader knows; a netlink library would be one more
dependency for a dozen calls). Every failure is one ``ClusterError`` line
naming the command and what it printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chaos.errors import EnvironmentProblem, RoomquakeError
from chaos.labels import proc_stat, process_start_time

TOOLS = ("ip", "iptables", "nsenter", "unshare", "dockerd", "umount")


class ClusterError(RoomquakeError):
    """The local cluster could not be made, reached or removed."""


class NeedsRoot(EnvironmentProblem):
    """Namespaces, bridges, firewall rules and extra engines need root."""


def require_root() -> None:
    if os.geteuid() != 0:
        raise NeedsRoot(
            "roomquake cluster needs root (it makes network namespaces, a bridge, firewall rules "
            "and one dockerd per node): run it with sudo"
        )


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise EnvironmentProblem(
            f"roomquake cluster needs {', '.join(missing)} on PATH",
            hint="Debian: apt-get install -y iproute2 iptables util-linux docker.io",
        )


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run one command; a failure (when ``check``) is a ClusterError with its own message."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ClusterError(f"{' '.join(argv)}: no answer after {timeout:g}s") from None
    except FileNotFoundError:
        raise ClusterError(f"{argv[0]}: not found on PATH") from None
    if check and done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise ClusterError(f"{' '.join(argv)} failed: {said[-1] if said else f'exit {done.returncode}'}")
    return done


def mounts_under(paths: Iterable[Path]) -> list[str]:
    """Mount points at or below any of ``paths``, deepest first (so they can be unmounted in order)."""
    roots = [str(p).rstrip("/") for p in paths]
    found: list[str] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        point = line.split()[4].replace("\\040", " ")
        if any(point == root or point.startswith(root + "/") for root in roots):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(paths: Iterable[Path]) -> None:
    """Detach every mount below ``paths`` (an engine that died keeps its overlay and netns mounts)."""
    for point in mounts_under(paths):
        run(["umount", "--lazy", point], check=False)


def remove_tree(path: Path) -> None:
    """Unmount what is below ``path``, then delete it; its subfolders (one per node) side by side.

    An engine's data root is ~13,000 files per node; deleting them is bound by
    the disk's latency, so the nodes' folders go in parallel.
    """
    unmount_all([path])
    if path.is_dir():
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda child: shutil.rmtree(child, ignore_errors=True), [c for c in path.iterdir() if c.is_dir()]))
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():  # something still mounted or busy: say so rather than leave it silently
        leftovers = mounts_under([path])
        raise ClusterError(f"could not remove {path}" + (f": still mounted at {leftovers[0]}" if leftovers else ""))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (a cluster's own folder: its containerd and shims)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and text in _cmdline(int(entry.name)):
            found.append(int(entry.name))
    return found


def descendants(pids: Iterable[int]) -> list[int]:
    """``pids`` and every process below them, children after their parents."""
    order: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop(0)
        if pid in order:
            continue
        order.append(pid)
        todo.extend(_children(pid))
    return order


def alive(pid: int, start: str) -> bool:
    """Whether ``pid`` is still the process that started at ``start`` (guards against pid reuse)."""
    if not Path(f"/proc/{pid}").exists():
        return False
    fields = proc_stat(pid)
    if not fields:
        return False
    return fields[0] not in ("Z", "X") and process_start_time(pid) == start


def end_process(pid: int, start: str, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only if ``pid`` still is the process we started."""
    if not alive(pid, start):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid, start) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid, start):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)


def kill_tree(roots: Iterable[int]) -> int:
    """SIGKILL ``roots`` and all their descendants (leaves first); returns how many were signalled."""
    everything = descendants(roots)
    starts = {pid: process_start_time(pid) for pid in everything}
    for pid in reversed(everything):
        if alive(pid, starts[pid]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    return len(everything)
