"""``pytest experiments/`` for real on the local backend, in a subprocess, as CI would run it.

Two shipped experiments (selected by tag) share one stack; a deviating
experiment fails with a message that says what went wrong; an invalid file
and an experiment whose stack cannot be found are errors, not failures;
JUnit carries every verdict with its journal and report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

TOO_FAST = """\
title: Edge loss with an impossible deadline
tags: [server-loss, relaunch, deadline]
stack: audio-room
profile: ci
scale: {edge: 3, supervisor: 4}
seed: 2
load: {room: launch, listeners: 20, ramp: 1s}
settle: 20s
steady_state:
  - {id: room-live, probe: room.state, expect: live}
method:
  - {id: kill-edge, at: 500ms, fault: kill, target: {service: edge, hosting: launch}}
recovery:
  - {id: relaunched-at-once, probe: room.relaunches, expect: ">= 1", within: 50ms, after: kill-edge}
"""

INVALID = """\
title: Broken
stack: audio-room
method:
  - {at: 1s, fault: kil, target: {service: edge}}
"""

NO_STACK = """\
title: Missing stack file
tags: [baseline]
stack: nowhere/stack.yaml
steady_state:
  - {probe: room.state, expect: live}
"""


@pytest.mark.timeout(420)
def test_pytest_runs_experiments_reuses_the_stack_and_reports(tmp_path: Path) -> None:
    own = tmp_path / "experiments"
    own.mkdir()
    (own / "a-too-fast.yaml").write_text(TOO_FAST)
    (own / "b-invalid.yaml").write_text(INVALID)
    (own / "c-no-stack.yaml").write_text(NO_STACK)
    junit, reports = tmp_path / "junit.xml", tmp_path / "reports"
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / "state")}
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
            "--rootdir", str(ROOT), "-o", "timeout=300", "-m", "not (network or load or staff-reduction or server-loss) or host or deadline",
            "--roomquake-backend", "local", "--roomquake-report-dir", str(reports), f"--junitxml={junit}",
            "experiments/", str(own)]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # a failure among them; --strict-markers (from pyproject) did not object
    assert "10 deselected" in out, out  # -m on tags: edge-loss, state-stall, state-crash etc. excluded, baseline and host-loss kept
    assert "2 skipped" in out, out  # node-loss and node-partition need a swarm: skipped on local, saying so

    cases = {c.get("name"): c for c in ET.parse(junit).iter("testcase")}
    props = {name: {p.get("name"): p.get("value") for p in c.iter("property")} for name, c in cases.items()}
    baseline = next(n for n in cases if n.startswith("Baseline"))
    host = next(n for n in cases if n.startswith("Losing the host"))
    assert props[baseline]["verdict"] == "passed" and props[host]["verdict"] == "passed"
    assert props[baseline]["stack_reused"] == "no" and props[host]["stack_reused"] == "yes"
    origins = {}
    for name in (baseline, host):
        assert Path(props[name]["journal"]).is_file()
        journal = json.loads(Path(props[name]["journal"]).read_text())
        origins[name] = next(e["origin"] for e in journal["events"] if e["kind"] == "stack_ready")
        assert 'data-verdict="passed"' in Path(props[name]["report"]).read_text()
        assert cases[name].find("failure") is None and cases[name].find("error") is None
    assert origins == {baseline: "brought_up", host: "reused"}  # the pooled stack: started once, then reused
    # JUnit carries recovery times only for recoveries whose disturbance was seen, and says when one was not
    assert float(props[host]["recovery_s:backup-account"]) > 0 and float(props[host]["recovery_s:hearing-again"]) > 0
    assert ("recovery_s:listeners-connected" in props[host]) != (props[host].get("outcome:listeners-connected") == "not_disturbed")
    assert not any(k.startswith("recovery_s:") for k in props[baseline])  # steady state and windows have no recovery time
    host_report = Path(props[host]["report"]).read_text()
    assert "stack reused: " in host_report and "stack brought up" not in host_report

    failed = cases["Edge loss with an impossible deadline"]
    assert props["Edge loss with an impossible deadline"]["verdict"] == "deviated"
    assert props["Edge loss with an impossible deadline"]["stack_reused"] == "yes"
    message = failed.find("failure").text  # type: ignore[union-attr]
    assert "DEVIATED: " in message
    assert "failed assertion relaunched-at-once (recovery, within): probe room.relaunches" in message
    assert "expected: >= 1" in message and "observed: 0 at t=" in message
    assert "timeline around t=" in message and "fault kill [kill-edge] hit edge-" in message
    assert "report: " in message and "Traceback" not in message

    for title in (n for n in cases if n.startswith(("Losing the node", "A node cut off"))):
        skipped = cases[title].find("skipped")
        assert skipped is not None and "needs the swarm backend" in (skipped.get("message") or ""), title
        assert props[title]["verdict"] == "skipped"

    invalid = cases["b-invalid"].find("error")
    assert invalid is not None and "method[0].fault" in (invalid.text or "") and "did you mean 'kill'" in (invalid.text or "")
    missing = cases["Missing stack file"].find("error")
    assert missing is not None and "could not run" in (missing.text or "") and "nowhere/stack.yaml" in (missing.text or "")
    assert props["Missing stack file"]["verdict"] == "errored"
    assert not list((tmp_path / "state").glob("2*.json"))  # the pooled stack was taken down at the end
