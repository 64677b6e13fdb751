"""The cluster record: everything a cluster is made of, written down before it is made.

One JSON file per cluster in ``<state dir>/clusters/`` (the run registry's
folder, see chaos.stack.registry), owned like a run: the labels of the
process working on it (pid, host, process start time). Each resource is
appended to ``made`` and the file saved *before* the command that creates
it runs, so a ``cluster up`` killed at any point leaves a record that names
everything it may have made; removal walks ``made`` backwards, tolerates
what never came to exist and drops each entry once it is gone.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.cluster.system import ClusterError
from chaos.errors import UsageError
from chaos.labels import RunIdentity, owner_alive

NAME = re.compile(r"^[a-z][a-z0-9]{0,5}$")  # short: it is part of interface names (15 bytes at most)

COMING_UP = "coming_up"
UP = "up"
GOING_DOWN = "going_down"


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UsageError(f"cluster name {name!r}: 1-6 lowercase letters and digits, starting with a letter")
    return name


def clusters_dir() -> Path:
    from chaos.stack.registry import state_dir

    path = state_dir() / "clusters"  # a subfolder: run records are the *.json files of state_dir() itself
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass
class ClusterRecord:
    name: str
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    # --- reading -----------------------------------------------------------------

    @property
    def state(self) -> str:
        return str(self.data.get("state", COMING_UP))

    @property
    def owner(self) -> dict[str, str]:
        return dict(self.data.get("owner", {}))

    @property
    def owner_alive(self) -> bool:
        return owner_alive(self.owner)

    @property
    def made(self) -> list[dict[str, Any]]:
        return list(self.data.get("made", []))

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return list(self.data.get("nodes", []))

    @property
    def manager_socket(self) -> str:
        return str(self.data.get("manager", ""))

    def node(self, index: int) -> dict[str, Any]:
        return next(n for n in self.nodes if n["index"] == index)

    # --- writing -----------------------------------------------------------------

    def save(self) -> None:
        tmp = self.path.with_suffix(f".json.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({**self.data, "saved": time.time()}, out, indent=1)
        tmp.replace(self.path)  # atomic: a reader sees the old or the new record

    def claim(self, identity: RunIdentity, state: str) -> None:
        """This process now works on the cluster (``clean`` leaves it alone while the process lives)."""
        self.data["owner"] = identity.labels()
        self.data["state"] = state
        self.save()

    def will_make(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record a resource before making it; returns the entry (update it and ``save`` as facts arrive)."""
        entry = {"kind": kind, **fields}
        self.data.setdefault("made", []).append(entry)
        self.save()
        return entry

    def forget(self, entry: dict[str, Any]) -> None:
        """A resource is gone: drop its entry."""
        self.data["made"] = [e for e in self.data.get("made", []) if e != entry]
        self.save()

    def set(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def new_record(name: str, identity: RunIdentity) -> ClusterRecord:
    """A fresh record for ``name``; refuses while one exists (up, coming up or half removed)."""
    check_name(name)
    path = clusters_dir() / f"{name}.json"
    if path.exists():
        existing = load(name)
        if existing.state == UP:
            raise ClusterError(f"cluster {name!r} is already up (roomquake cluster status; roomquake cluster down)")
        if existing.owner_alive:
            raise ClusterError(f"cluster {name!r} is being worked on by pid {existing.owner.get('io.roomquake.owner-pid', '?')}")
        raise ClusterError(
            f"cluster {name!r} has leftovers of an interrupted run: remove them first "
            "(roomquake cluster down, or roomquake clean)"
        )
    record = ClusterRecord(name=name, path=path, data={"name": name, "created": time.time(), "made": [], "nodes": []})
    record.claim(identity, COMING_UP)
    return record


def load(name: str) -> ClusterRecord:
    path = clusters_dir() / f"{check_name(name)}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClusterError(f"no cluster {name!r} is recorded (start one with: roomquake cluster up --nodes 3)") from None
    except ValueError as err:
        raise ClusterError(f"{path}: unreadable cluster record ({err})") from None
    return ClusterRecord(name=name, path=path, data=data)


def records() -> Iterator[ClusterRecord]:
    for path in sorted(clusters_dir().glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        yield ClusterRecord(name=path.stem, path=path, data=data)
