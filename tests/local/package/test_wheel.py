"""The wheel installed outside the repository works from any directory (issue 11: a complete package).

The fixture builds the wheel from a copy of the sources and installs it into
a fresh virtualenv with --no-index (tests/installed.py); every command here
runs that virtualenv's ``roomquake`` in a temporary folder, never the checkout.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def test_the_wheel_carries_the_stack_its_services_and_the_experiments(installed_roomquake) -> None:
    names = set(zipfile.ZipFile(installed_roomquake.wheel).namelist())
    shipped = {n.removeprefix("chaos/_shipped/") for n in names if n.startswith("chaos/_shipped/")}
    expected = {"docker/stack.yaml", "docker/Dockerfile.services", "docker/Dockerfile.proxy", "constraints.txt",
                "pyproject.toml", "experiments/README.md"}
    expected |= {f"docker/audioroom/{p.name}" for p in (ROOT / "docker" / "audioroom").glob("*.py")}
    expected |= {f"experiments/{p.name}" for p in (ROOT / "experiments").glob("*.yaml")}
    assert expected <= shipped, sorted(expected - shipped)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_wheel_is_typed(installed_roomquake) -> None:
    """PEP 561: chaos/py.typed travels in the wheel, so a type checker reads the installed package's annotations."""
    names = set(zipfile.ZipFile(installed_roomquake.wheel).namelist())
    assert "chaos/py.typed" in names
    assert "chaos/stack/contract.py" in names  # the running-stack protocol the fixtures are typed with


def test_installed_package_uses_its_own_files(installed_roomquake, tmp_path: Path) -> None:
    probe = ("import json, chaos, chaos.shipped, chaos.images.config as c; "
             "print(json.dumps([chaos.__file__, str(chaos.shipped.root()), str(c.ImageConfig().root), "
             "str(c.ImageConfig().chaos_dir)]))")
    done = installed_roomquake.run("python", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    package, root, image_root, chaos_dir = (Path(p) for p in json.loads(done.stdout))
    venv = installed_roomquake.venv
    for path in (package, root, image_root, chaos_dir):
        assert venv in path.parents, f"{path} is not inside the installed virtualenv {venv}"
    assert (root / "docker" / "audioroom" / "edge.py").is_file() and (root / "docker" / "Dockerfile.services").is_file()


@pytest.mark.timeout(600)
def _runs_locally(path: Path) -> bool:
    from chaos.experiment import load_experiment
    from chaos.experiment.stackcheck import backends_for

    allowed = backends_for(load_experiment(path))
    return allowed is None or "local" in allowed


def test_init_validate_and_run_from_a_fresh_folder(installed_roomquake, tmp_path: Path) -> None:
    project = tmp_path / "project"
    state = str(tmp_path / "state")
    done = installed_roomquake.run("roomquake", "init", str(project), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (project / "README.md").is_file() and (project / "experiments" / "edge-loss.yaml").is_file()
    files = sorted(str(p.relative_to(project)) for p in (project / "experiments").glob("*.yaml"))
    local = [f for f in files if _runs_locally(project / f)]  # node faults need a swarm
    done = installed_roomquake.run("roomquake", "validate", "--backend", "local", *local, cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": ok") == len(local) >= 7
    done = installed_roomquake.run("roomquake", "validate", *files, cwd=project)  # the backend's own check aside
    assert done.returncode == 0, done.stdout + done.stderr
    done = installed_roomquake.run("roomquake", "run", "--backend", "local", "--journal-dir", "journals",
                                   "experiments/baseline.yaml", cwd=project, timeout=480, ROOMQUAKE_STATE_DIR=state)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "experiments/baseline.yaml: PASSED" in done.stdout
    journal = json.loads(next((project / "journals").glob("*.json")).read_text())
    assert journal["verdict"] == "passed"


@pytest.mark.timeout(300)
def test_stack_up_by_name_from_anywhere(installed_roomquake, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    done = installed_roomquake.run("roomquake", "stack", "up", "--file", "audio-room", "--backend", "local",
                                   "--scale", "edge=1,supervisor=1,crowd=0", cwd=tmp_path, timeout=240,
                                   ROOMQUAKE_STATE_DIR=state)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "stack audio-room up" in done.stdout
        status = installed_roomquake.run("roomquake", "stack", "status", cwd=tmp_path, ROOMQUAKE_STATE_DIR=state)
        assert status.returncode == 0 and "edge-1" in status.stdout, status.stdout + status.stderr
    finally:
        down = installed_roomquake.run("roomquake", "stack", "down", "--all", cwd=tmp_path, timeout=120,
                                       ROOMQUAKE_STATE_DIR=state)
        assert down.returncode == 0, down.stdout + down.stderr
