"""Ports drawn by one roomquake process are leased: no other draw takes them until the stack is torn down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.stack import ports
from chaos.stack.ports import free_ports, release_ports


@pytest.fixture
def few_ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A private lease file and a candidate range of 4 ports (free ones, found by the kernel)."""
    monkeypatch.setenv("ROOMQUAKE_PORT_LEASES", str(tmp_path / "leases.json"))
    low = 0
    for start in range(20000, 30000, 7):
        if all(_free(p) for p in range(start, start + 4)):
            low = start
            break
    assert low
    monkeypatch.setattr(ports, "LOWEST_PORT", low)
    monkeypatch.setattr(ports, "_ephemeral_start", lambda: low + 4)
    return list(range(low, low + 4))


def _free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_leased_port_is_not_drawn_again_until_its_owner_releases_it(few_ports: list[int], tmp_path: Path) -> None:
    owner = tmp_path / "run-1"
    first = free_ports(3, owner=owner)
    assert set(first) <= set(few_ports)
    # free to bind (nobody listens yet), but leased: the next draw takes the fourth and then the kernel's
    second = free_ports(2)
    assert not set(first) & set(second)
    assert len(set(second) & set(few_ports)) == 1
    release_ports(owner)
    third = free_ports(3)
    assert set(third) <= set(few_ports) and set(third) & set(first)


def test_a_lease_outlives_its_process_while_its_run_folder_exists(few_ports: list[int], tmp_path: Path) -> None:
    """A `stack up` process ends and its stack runs on: its ports stay leased while the run folder is there."""
    owner = tmp_path / "run-2"
    owner.mkdir()
    code = (f"from chaos.stack import ports; ports.LOWEST_PORT = {few_ports[0]}; "
            f"ports._ephemeral_start = lambda: {few_ports[-1] + 1}; print(ports.free_ports(4, owner={str(owner)!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(), check=True)
    drawn = json.loads(done.stdout)
    assert sorted(drawn) == few_ports
    assert not set(free_ports(2)) & set(drawn)  # its process is gone, its run folder is not
    owner.rmdir()  # the run is forgotten: the leases lapse
    assert set(free_ports(4)) == set(few_ports)


def test_leases_of_a_dead_process_without_a_run_folder_or_past_their_time_lapse(few_ports: list[int]) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout
    leases = {str(few_ports[0]): {"pid": int(dead), "owner": "", "until": time.time() + 60},
              str(few_ports[1]): {"pid": os.getpid(), "owner": "", "until": time.time() - 1},
              str(few_ports[2]): {"pid": os.getpid(), "owner": "", "until": time.time() + 60}}
    ports.lease_file().write_text(json.dumps(leases))
    drawn = free_ports(3)
    assert set(drawn) == {few_ports[0], few_ports[1], few_ports[3]}  # only the live, unexpired lease held


def test_a_cut_lease_file_is_no_lease(few_ports: list[int]) -> None:
    ports.lease_file().write_text('{"2000')  # a writer killed mid-write (never happens: it writes a copy and renames)
    assert set(free_ports(4)) == set(few_ports)
    assert len(json.loads(ports.lease_file().read_text())) == 4
