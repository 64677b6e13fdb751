"""Every run on a clean slate (issue 20 items 2-3) on real processes: verdicts on a reused or attached
stack are those of a fresh one, whatever ran before, and the journal says what was reset and applied."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EXPERIMENTS = ROOT / "experiments"


def roomquake(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def verdicts_in_order(order: list[str], tmp_path: Path, tag: str) -> dict[str, tuple[str, str]]:
    junit = tmp_path / f"junit-{tag}.xml"
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / f"state-{tag}")}
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
            "--rootdir", str(ROOT), "-o", "timeout=300", "--roomquake-backend", "local",
            "--roomquake-report-dir", str(tmp_path / f"reports-{tag}"), f"--junitxml={junit}",
            *[str(EXPERIMENTS / f"{name}.yaml") for name in order]]
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    out = {}
    for case in ET.parse(junit).iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        journal = json.loads(Path(props["journal"]).read_text())
        name = Path(journal["file"]).stem
        out[name] = (props["verdict"], props["stack_reused"])
        if props["stack_reused"] == "yes":  # the journal says what was reset, and that it was verified
            assert any("reset verified" in line for line in journal["reset"]), journal["reset"]
    return out


@pytest.mark.timeout(1000)
def test_shipped_experiments_in_two_orders_with_reuse_give_the_fresh_verdicts(tmp_path: Path) -> None:
    # three experiments that share one stack (same scale, no env of their own); state-partition and baseline
    # assert no relaunch at all, which host-loss's relaunch before them must not leak into
    first = verdicts_in_order(["host-loss", "state-partition", "baseline"], tmp_path, "a")
    second = verdicts_in_order(["state-partition", "baseline", "host-loss"], tmp_path, "b")
    assert {k: v[0] for k, v in first.items()} == {k: v[0] for k, v in second.items()} == {
        "host-loss": "passed", "state-partition": "passed", "baseline": "passed"}  # a fresh stack's verdicts
    assert [v[1] for v in first.values()].count("yes") == 2 and [v[1] for v in second.values()].count("yes") == 2


@pytest.mark.timeout(600)
def test_the_attach_sequence_gives_the_fresh_verdicts(tmp_path: Path) -> None:
    """stack up; run --attach latest edge-loss; gameday --attach latest --auto no-flap (the issue's sequence)."""
    env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(tmp_path / "state"),
           "DOCKER_HOST": f"unix://{ROOT}/no-such-docker.sock"}
    up = roomquake("stack", "up", "--backend", "local", "--scale", "edge=2,supervisor=2", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        run = roomquake("run", "--attach", "latest", "--journal-dir", str(tmp_path / "j"),
                        str(EXPERIMENTS / "edge-loss.yaml"), env=env)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        gameday = roomquake("gameday", "--attach", "latest", "--auto", "--journal-dir", str(tmp_path / "j"),
                            str(EXPERIMENTS / "no-flap.yaml"), env=env)
        assert gameday.returncode == 0, gameday.stdout[-3000:] + gameday.stderr[-2000:]
        journals = {Path(j["file"]).stem: j for j in (json.loads(p.read_text()) for p in (tmp_path / "j").glob("*.json"))}
        assert journals["edge-loss"]["verdict"] == journals["no-flap"]["verdict"] == "passed"
        for journal in journals.values():
            assert journal["stack_origin"] == "attached"
            reset = " ".join(journal["reset"])
            # edge-loss asks edge=3, supervisor=4 and HOST_GRACE=3s of a stack that runs edge=2, supervisor=2: applied
            assert "edge=3" in reset and "supervisor=4" in reset and "reset verified" in reset
        assert "HOST_GRACE=3s" in " ".join(journals["edge-loss"]["reset"])
        # no-flap gets exactly its own env (3 values), nothing left from edge-loss's
        applied = next(line for line in journals["no-flap"]["reset"] if "applied:" in line)
        env_part = applied.split(", env ", 1)[1]
        assert env_part.count("=") == 3 and "edge: HEARTBEAT_TIMEOUT=2500ms" in env_part, applied
        assert "HEARTBEAT_TIMEOUT=2500ms" in env_part.split(";")[0] and "HOST_GRACE=3s" in env_part, applied
    finally:
        down = roomquake("stack", "down", "--all", env=env)
        assert down.returncode == 0, down.stdout + down.stderr
