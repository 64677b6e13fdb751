"""A real local cluster for the tests in this folder (root only: namespaces, a bridge, rules, extra engines).

``local_cluster``: a 2-node cluster (name ``rqt``, or
``$ROOMQUAKE_TEST_CLUSTER``), lent to each module that asks and checked to be
given back idle; ``local_cluster3``: a 3-node cluster (the name and a 3) for
the node faults and the cluster experiments. Down as soon as the next test
asks for neither (or for the other), checked to have left nothing. Never two at
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


# One cluster at a time (a 2-core CI carries one cluster's engines, and a run that finds "the local cluster that
# is up" must find the module's own: two at once made node-loss run on the 2-node one). The pool keeps it up
# from one module to the next that asks for the same one (tests/conftest.py runs the modules of one size
# together): a bring-up and a take-down cost 15-40 s each on a busy CI, five times over before.
@pytest.fixture(scope="session")
def cluster_pool(root_only, docker_engine, stack_images, cluster_state):
    """The one local cluster up now, if any; down (nothing left) before the state folder is put back."""
    try:
        yield _POOL
    finally:
        _POOL.release()


@pytest.fixture(scope="module")
def local_cluster(cluster_pool):
    """A 2-node cluster with the stack's images on both nodes, as the module's runs left it at the end: idle."""
    yield from cluster_pool.lend(NAME, 2)


@pytest.fixture(scope="module")
def local_cluster3(cluster_pool):
    """A 3-node cluster (one manager, two workers) with the stack's images, left idle by each module."""
    yield from cluster_pool.lend(f"{NAME}3", 3)


FIXTURE_OF = {NAME: "local_cluster", f"{NAME}3": "local_cluster3"}


class ClusterPool:
    """Lends one cluster to module after module; a module must give it back idle (no service, no container,
    every node ready and active), else it is taken down: a leak fails that module, a node left unwell
    only costs the next module a fresh cluster."""

    def __init__(self) -> None:
        self.name: str | None = None

    def lend(self, name: str, nodes: int):
        from chaos.cluster import load, up

        if self.name != name:
            self.release()
            assert not leftovers(name), f"leftovers of an earlier cluster {name}: {leftovers(name)}"
            up(nodes, name)
            self.name = name
        yield load(name)  # read again: a node fault's rollback may have restarted an engine
        if self.name == name:  # else the session is over and took it down
            self.take_back(name)

    def take_back(self, name: str) -> None:
        import docker

        from chaos.cluster import load, node_statuses
        from chaos.cluster.daemon import NodePaths, client

        record = load(name)
        leaked: list[str] = []

        def idle() -> bool:
            nonlocal leaked
            try:
                with client(NodePaths(name, 1), timeout=10) as manager:
                    leaked = [s.name for s in manager.services.list()]
            except docker.errors.DockerException as e:
                leaked = [f"the manager does not answer: {e}"]
            statuses = node_statuses(record)
            leaked += [f"node {n.index}: {n.containers} container(s)" for n in statuses if n.containers]
            return not leaked and all(
                (n.engine, n.swarm, n.availability) == ("answers", "ready", "active") for n in statuses)

        try:
            until(idle, 30, f"cluster {name} idle again", interval=1.0)
        except AssertionError:
            self.release()  # never lent again as it is
            assert not leaked, f"the module left this on cluster {name}: {leaked}"

    def release(self) -> None:
        """Take the cluster down, if one is up, and check that nothing of it is left on the host."""
        from chaos.cluster import down

        name, self.name = self.name, None
        if name is not None:
            down(name)
            assert leftovers(name) == []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """Down the pool's cluster once its module is over and the next file does not ask for it (the other
    files of the engine-wide group, and the worker's other groups, run without a cluster's engines beside
    them). Within a module the cluster stays lent to its end, where it is checked to be idle."""
    yield
    if nextitem is not None and nextitem.path == item.path:
        return
    if _POOL.name is not None and (nextitem is None or FIXTURE_OF[_POOL.name] not in nextitem.fixturenames):
        _POOL.release()


_POOL = ClusterPool()  # the worker's one pool: the session fixture's, and this hook's
