"""The shipped experiments that only a cluster can run, on a real 3-node local cluster, through ``roomquake run``.

Time box: each run has 600 s (pytest-timeout). Measured on 2 cores at load
averages of 15-20: both tests with the cluster's up and down in 3 min 52 s
(about 1-1.5 min per run, 25-35 s cluster up), so a 3-node cluster fits
such a CI machine. Run on its own (one cluster at a time):
``ROOMQUAKE_TEST_CLUSTER=s2 pytest tests/docker/cluster/test_cluster_experiments.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def run_experiment(name: str, journal_dir: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    done = subprocess.run([sys.executable, "-m", "chaos", "run", "--backend", "swarm", "--journal-dir", str(journal_dir),
                           str(ROOT / "experiments" / f"{name}.yaml")], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=580)
    journals = sorted(journal_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert journals, done.stdout[-2000:] + done.stderr[-2000:]
    return done, json.loads(journals[-1].read_text())


def recovery_times(journal: dict) -> dict[str, float]:
    return {a["check"]: a.get("recovery_s") for a in journal["assertions"] if a.get("phase") == "recovery"}


def check_clean_run(done: subprocess.CompletedProcess[str], journal: dict, cluster) -> None:
    failed = [a.get("message") for a in journal["assertions"] if not a["ok"]]
    assert done.returncode == 0 and journal["verdict"] == "passed", (journal.get("reason"), failed, done.stdout[-1500:])
    injected = [e for e in journal["events"] if e["kind"] == "fault_injected"]
    rolled = [e for e in journal["events"] if e["kind"] == "fault_rolled_back"]
    assert len(injected) == 1 and len(rolled) == 1 and rolled[0]["ok"]
    from chaos.cluster import nodes as local
    from chaos.cluster.network import Names

    for node in cluster.nodes:  # every node is back: engine up, link up
        found = local.ClusterNode(cluster.name, node["index"], node["node_id"], node["hostname"])
        assert local.engine_alive(found) and local.link_up(found)
    assert not list(Path(os.environ["ROOMQUAKE_STATE_DIR"]).glob("runner-*.json"))
    assert Names(cluster.name).bridge


@pytest.mark.timeout(600)
def test_node_loss_relaunches_the_room_on_another_node(local_cluster3, tmp_path):
    done, journal = run_experiment("node-loss", tmp_path)
    check_clean_run(done, journal, local_cluster3)
    # the swarm started the lost node's edges again elsewhere: seen down, then back (a recovery time)
    assert recovery_times(journal)["edges-rescheduled"] is not None
    print("node-loss recovery:", recovery_times(journal))


@pytest.mark.timeout(600)
def test_node_partition_never_leaves_the_room_live_in_two_places(local_cluster3, tmp_path):
    done, journal = run_experiment("node-partition", tmp_path)
    check_clean_run(done, journal, local_cluster3)
    history = [a for a in journal["assertions"] if a.get("phase") == "history"]
    assert any("no_split_brain" in a["check"] and a["ok"] for a in history), history
    print("node-partition recovery:", recovery_times(journal))
