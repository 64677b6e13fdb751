"""Test tiers by folder: tests/unit, tests/local, tests/docker.

A docker-tier test asks for the ``docker_engine`` fixture. Where the engine
is missing the test is skipped, except when CI=true or
ROOMQUAKE_REQUIRE_DOCKER=1: then a missing engine fails the test, because CI
must really run the docker tier.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

TIERS = ("unit", "local", "docker")
ROOT = Path(__file__).resolve().parent


# Under pytest-xdist (`make test` runs `pytest -n 4` on an idle machine) a test file stays on one worker, so its
# module fixtures are made once. These share one worker, one file after another,
# because they act on the whole Docker engine or on fixed names: `roomquake clean` sweeps every dead
# run on the engine (another file's SIGKILLed run is that file's to find), the local clusters use
# fixed names and subnets, and the compose fixture projects fixed project names.
SERIAL_GROUPS = {
    "engine-wide": ("docker/cluster/", "docker/clean/", "docker/stack/test_docker_stack.py",
                    "docker/faults/test_packet_faults.py"),
    "compose": ("docker/compose/",),
    # removing a test image (with its untagged parents) pulls the cache out from under another build
    "images": ("docker/images/", "docker/package/test_installed_images.py"),
}


def xdist_group(rel: str) -> str:
    """The xdist group of a test file (a path relative to tests/): its serial group, else the file."""
    for group, prefixes in SERIAL_GROUPS.items():
        if rel.startswith(prefixes):
            return group
    return rel


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scope scheduling, with our groups as the scopes. (Its own ``loadgroup`` rewrites
    node ids through ``Item._nodeid``, which pytest 9 no longer reads, so it groups nothing.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FileGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return xdist_group(path.removeprefix("tests/"))

    return FileGroups(config, log)


# The longest groups start first (measured: a few minutes each), so that the run does not end
# with one worker on a long file while the others wait.
LONG_FIRST = ("engine-wide", "local/explore/test_explore_local.py", "local/explore/test_explore_host_local.py", "compose", "local/run/test_shipped_local.py",
              "docker/run/test_docker_run.py", "docker/stack/test_lifecycle_docker.py",
              "local/run/test_clean_slate_local.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = _relative(item)
        if rel is not None and rel.parts and rel.parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, rel.parts[0]))
    if hasattr(config, "workerinput"):  # an xdist worker: the order it collects is the order scopes go out
        items.sort(key=lambda item: (_start_rank(item), _on_three_nodes(item)))  # stable: file order otherwise
    else:
        items.sort(key=_on_three_nodes)


def _on_three_nodes(item: pytest.Item) -> bool:
    """The 3-node cluster's tests go after the rest of their group, so that the 2-node cluster is brought up
    once for its files and the 3-node one once for its (tests/docker/cluster/conftest.py lends them)."""
    return "local_cluster3" in getattr(item, "fixturenames", ())


def _start_rank(item: pytest.Item) -> int:
    rel = _relative(item)
    group = xdist_group(rel.as_posix()) if rel is not None else ""
    return LONG_FIRST.index(group) if group in LONG_FIRST else len(LONG_FIRST)


def _relative(item: pytest.Item) -> Path | None:
    try:
        return Path(str(item.fspath)).resolve().relative_to(ROOT)
    except ValueError:
        return None


def docker_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("ROOMQUAKE_REQUIRE_DOCKER") == "1"


@pytest.fixture(scope="session")
def docker_engine():
    """A connected Docker SDK client, or skip (fail under CI)."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as err:  # noqa: BLE001 - any failure means "no engine"
        message = f"no Docker engine answers: {err}"
        if docker_required():
            pytest.fail(message + " (CI=true or ROOMQUAKE_REQUIRE_DOCKER=1: the docker tier must run)")
        pytest.skip(message)
    yield client
    client.close()


def _load_helper(name: str, relative: str):
    """A helper module of the tests (not a package), loaded by path once."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / relative)
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
    spec.loader.exec_module(module)
    return module


# fixture for tests/local/compat and tests/docker/compat (Node client projects)
node_project = _load_helper("roomquake_compat_harness", "compat/harness.py").node_project
# fixture for tests/local/package and tests/docker/package (the wheel in a fresh virtualenv)
installed_roomquake = _load_helper("roomquake_installed", "installed.py").installed_roomquake
# strategies and bounds of the hostile-input and fuzz tests: `import roomquake_fuzzing`
_load_helper("roomquake_fuzzing", "fuzzing.py")
# free ports, polling, /proc stat fields, import graphs: `import roomquake_testutil`
_load_helper("roomquake_testutil", "util.py")
