"""Free loopback ports, leased across processes until the stack that drew them is torn down.

A port found free is free only until someone binds it. Between the draw and
the bind of the service that is to listen on it (a bring-up: up to seconds
on a loaded machine) and whenever that service is down (a kill, a restart
as a fault), another roomquake process drawing ports at the same time, a
second test worker for one, can find it free too, and one of the two
services fails with "address already in use" (seen in a CI run: a crowd of
one local stack on a port another worker's stack had drawn). So every port
drawn is written to a lease file shared by this user's roomquake processes
(under a file lock) and no other draw takes it while the lease lives: until
the owner releases it (teardown), or, once the process that drew it is
gone, while its owner's run folder still exists; never longer than
``LEASE_S``. The kernel's own check (a bind) still comes first: a port
some other program holds is never drawn.

Ports are drawn below the kernel's ephemeral range: the kernel gives ports of
that range to outgoing connections (thousands a second in a loaded suite),
and one of them could take a drawn port before its service binds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LOWEST_PORT = 15000
LEASE_S = 3600.0  # the longest a lease lives without a release (a test helper's ports, a lost teardown)


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def lease_file() -> Path:
    """This user's lease file: shared by every roomquake process of the user, whatever its state dir."""
    return Path(os.environ.get("ROOMQUAKE_PORT_LEASES") or Path(tempfile.gettempdir()) / f"roomquake-ports-{os.getuid()}.json")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(lease: dict[str, Any], now: float) -> bool:
    if float(lease.get("until", 0)) <= now:
        return False
    owner = str(lease.get("owner") or "")
    return _pid_alive(int(lease.get("pid", 0))) or bool(owner and Path(owner).exists())


@contextmanager
def _leases() -> Iterator[dict[str, dict[str, Any]]]:
    """The live leases, under the file lock; what the block leaves in the dict is written back."""
    path = lease_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+", encoding="ascii") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                found = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                found = {}  # none yet, or cut by a killed writer: nothing to honour
            now = time.time()
            leases = {port: lease for port, lease in found.items() if isinstance(lease, dict) and _alive(lease, now)}
            yield leases
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(leases), encoding="utf-8")
            os.replace(tmp, path)  # whole or not at all, whatever kills us
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_ports(count: int, host: str = "127.0.0.1", owner: str | Path | None = None) -> list[int]:
    """``count`` distinct ports free right now and leased to this process (and ``owner``, a run folder that
    keeps the lease while it exists), below the ephemeral range and in random order; from the ephemeral
    range, as the kernel picks them, when too few are free below it."""
    try:
        with _leases() as leases:
            ports = _draw(count, host, set(leases))
            lease = {"pid": os.getpid(), "owner": str(owner or ""), "until": time.time() + LEASE_S}
            leases.update({str(port): dict(lease) for port in ports})
            return ports
    except OSError:
        return _draw(count, host, set())  # no lease file to be had (a read-only temp dir): the bind check alone


def release_ports(owner: str | Path) -> None:
    """End the leases of ``owner`` (its stack is down: nothing will bind its ports again)."""
    try:
        with _leases() as leases:
            for port in [p for p, lease in leases.items() if lease.get("owner") == str(owner)]:
                del leases[port]
    except OSError:
        pass


def _draw(count: int, host: str, leased: set[str]) -> list[int]:
    socks: list[socket.socket] = []
    candidates = [p for p in range(LOWEST_PORT, max(LOWEST_PORT, _ephemeral_start())) if str(p) not in leased]
    random.shuffle(candidates)
    try:
        for port in candidates:
            if len(socks) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
        while len(socks) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()
