"""The plugin on the real Docker engine: an experiment file through pytest, and a Python-authored test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Real-world timings (profile gameday): the judgement must not hinge on how loaded the test machine is.
SMOKE = """\
title: Docker smoke through pytest
tags: [smoke]
stack: audio-room
profile: gameday
scale: {edge: 2, supervisor: 1, host: 1}
load: {room: launch, listeners: 10, ramp: 1s}
settle: 60s
steady_state:
  - {id: room-live, probe: room.state, expect: live}
method:
  - {id: still-live, probe: room.state, expect: live, throughout: 2s}
"""


@pytest.mark.timeout(420)
def test_pytest_runs_an_experiment_on_docker_with_images_in_the_report(docker_engine, stack_images, tmp_path: Path) -> None:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "smoke.yaml").write_text(SMOKE)
    junit = tmp_path / "junit.xml"
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "timeout=300", str(tmp_path / "experiments"),
         "--roomquake-backend", "docker", "--roomquake-report-dir", str(tmp_path / "reports"), f"--junitxml={junit}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [case] = list(ET.parse(junit).iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert case.get("name") == "Docker smoke through pytest"
    assert props["verdict"] == "passed" and props["backend"] == "docker"
    html = Path(props["report"]).read_text()
    assert stack_images.services.ref.split(":")[0] in html or "sha256:" in html  # the images are in the environment
    # nothing of the pooled stack is left in the engine
    stack_run = json.loads(Path(props["journal"]).read_text())["stack_run_id"]
    assert not docker_engine.containers.list(all=True, filters={"label": f"io.roomquake.run={stack_run}"})


@pytest.mark.timeout(300)
@pytest.mark.roomquake_stack(backend="docker", profile="ci", scale={"edge": 2, "supervisor": 2, "host": 1})
def test_disconnecting_the_hosting_edge_relaunches_the_room(docker_engine, stack_images, roomquake_stack, faults) -> None:
    stack = roomquake_stack
    stack.start_load(listeners=10, ramp_s=1)
    stack.wait_for("room.state", "live", within=30)
    with faults.disconnect(hosting=stack.room) as hit:  # containers only: the local backend cannot do this
        [edge] = hit.names
        stack.wait_for("room.edge", f"!= {edge}", within=20)
        stack.wait_for("room.state", "live", within=20)
    assert stack.probe("room.relaunches") >= 1
