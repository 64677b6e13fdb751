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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            rel = Path(str(item.fspath)).resolve().relative_to(ROOT)
        except ValueError:
            continue
        if rel.parts and rel.parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, rel.parts[0]))


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
