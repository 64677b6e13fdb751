"""A real local cluster for the tests in this folder (root only: namespaces, a bridge, rules, extra engines).

``local_cluster``: one 2-node cluster (name ``rqt``, or
``$ROOMQUAKE_TEST_CLUSTER``) per test module, taken down at the module's end
and checked to have left nothing; ``local_cluster3``: a 3-node cluster (the
name and a 3) for the node faults and the cluster experiments. Never two at
once: a 2-core CI carries one cluster's engines. ``leftovers(name)`` lists
what of a cluster still exists on the host: namespaces, links, FORWARD rules,
processes and folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from roomquake_testutil import until

NAME = os.environ.get("ROOMQUAKE_TEST_CLUSTER", "rqt")  # another name keeps a second checkout's tests apart
ROOT = Path(__file__).resolve().parents[3]


def leftovers(name: str) -> list[str]:
    """Everything of cluster ``name`` still on this host (empty: nothing)."""
    from chaos.cluster.daemon import DATA_ROOT, RUN_ROOT
    from chaos.cluster.network import Names, rules_tagged
    from chaos.cluster.system import processes_mentioning

    names = Names(name)
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    found += [f"netns {line.split()[0]}" for line in netns if line.startswith(f"rq-{name}-")]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
    found += [f"link {line.split(':')[1].strip()}" for line in links
              if line.split(":")[1].strip().split("@")[0] in {names.bridge, *[names.veth_host(i) for i in range(1, 10)]}]
    found += [f"rule {rule}" for rule in rules_tagged(names.comment)]
    for root in (RUN_ROOT / name, DATA_ROOT / name):
        if root.exists():
            found.append(f"folder {root}")
        found += [f"process {pid}" for pid in processes_mentioning(str(root) + "/")]
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    found += [f"mount {m.split()[4]}" for m in mounts if f"/rqc/{name}/" in m.split()[4]]
    return found


def roomquake(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "chaos", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=os.environ.copy())
    if check and done.returncode != 0:
        raise AssertionError(f"roomquake {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-800:]}")
    return done


@pytest.fixture(scope="session")
def tools():
    """The helpers above, for the test modules (importlib mode: conftest is not importable from them)."""
    return type("Tools", (), {"leftovers": staticmethod(leftovers), "roomquake": staticmethod(roomquake),
                              "until": staticmethod(until), "NAME": NAME, "ROOT": ROOT})


@pytest.fixture(scope="session")
def root_only():
    if os.geteuid() != 0:
        pytest.skip("a local cluster needs root (namespaces, a bridge, firewall rules, extra engines)")


@pytest.fixture(scope="session")
def cluster_state(tmp_path_factory):
    """A state folder of our own, so a developer's clusters and runs are never touched."""
    old = os.environ.get("ROOMQUAKE_STATE_DIR")
    os.environ["ROOMQUAKE_STATE_DIR"] = str(tmp_path_factory.mktemp("cluster-state"))
    os.environ.pop("DOCKER_HOST", None) if os.environ.get("DOCKER_HOST", "").startswith("unix:///run/rqc/") else None
    yield Path(os.environ["ROOMQUAKE_STATE_DIR"])
    if old is None:
        os.environ.pop("ROOMQUAKE_STATE_DIR", None)
    else:
        os.environ["ROOMQUAKE_STATE_DIR"] = old


# Module scope, both: one cluster at a time, so that a run that finds "the local cluster that is up" finds the
# module's own (two at once made node-loss run on the 2-node one), and 2 cores carry one cluster's engines.
@pytest.fixture(scope="module")
def local_cluster(root_only, docker_engine, stack_images, cluster_state):
    """A 2-node cluster with the stack's images on both nodes; down at the end, and nothing left."""
    yield from _cluster(NAME, 2)


@pytest.fixture(scope="module")
def local_cluster3(root_only, docker_engine, stack_images, cluster_state):
    """A 3-node cluster (one manager, two workers) with the stack's images; down at the end, and nothing left."""
    yield from _cluster(f"{NAME}3", 3)


def _cluster(name: str, nodes: int):
    from chaos.cluster import down, up

    assert not leftovers(name), f"leftovers of an earlier cluster {name}: {leftovers(name)}"
    record = up(nodes, name)
    try:
        yield record
    finally:
        down(name)
        assert leftovers(name) == []
