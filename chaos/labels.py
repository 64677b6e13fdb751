"""Run identity and the labels every Docker resource of a run carries.

A run is "dead" when its owner process is gone; ``roomquake clean`` removes
only resources of dead runs, so parallel runs never sweep each other.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field

RUN = "io.roomquake.run"  # run id; present on everything roomquake creates
OWNER_PID = "io.roomquake.owner-pid"
OWNER_HOST = "io.roomquake.owner-host"
OWNER_START = "io.roomquake.owner-start"  # process start time, guards pid reuse
SERVICE = "io.roomquake.service"
INSTANCE = "io.roomquake.instance"
KEEP = "io.roomquake.keep"  # "1": a long-lived game-day stack, never swept


def proc_stat(pid: int) -> list[str]:
    """Fields 3.. of /proc/PID/stat (state first), [] when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # The command name (field 2) may hold spaces, so split after ')'.
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far (fields 14 and 15), 0.0 when the process is gone."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def process_start_time(pid: int) -> str:
    """Start time of ``pid`` in clock ticks since boot (field 22), '' when unknown."""
    fields = proc_stat(pid)
    return fields[19] if len(fields) > 19 else ""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class RunIdentity:
    run_id: str = field(default_factory=new_run_id)
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)

    def labels(self, **extra: str) -> dict[str, str]:
        base = {
            RUN: self.run_id,
            OWNER_PID: str(self.pid),
            OWNER_HOST: self.host,
            OWNER_START: process_start_time(self.pid),
        }
        base.update(extra)
        return base


def owner_alive(labels: dict[str, str]) -> bool:
    """Whether the process that created a labelled resource still runs.

    Resources from another host, or marked keep, count as alive: we cannot
    see that host's processes and must not remove what we cannot judge. A
    zombie (killed, not yet reaped by its parent) is dead.
    """
    if labels.get(KEEP) == "1":
        return True
    if labels.get(OWNER_HOST, socket.gethostname()) != socket.gethostname():
        return True
    try:
        pid = int(labels.get(OWNER_PID, ""))
    except ValueError:
        return False
    fields = proc_stat(pid)
    if len(fields) <= 19 or fields[0] in ("Z", "X", "x"):
        return False  # gone, or a zombie: it ran its last line, only its parent has not reaped it yet
    return fields[19] == labels.get(OWNER_START, "")
