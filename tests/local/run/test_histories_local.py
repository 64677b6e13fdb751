"""On the real reference stack (local processes): windowed probes and the per-listener history checker.

Deadlines come from the stack's ci profile, with margins; nothing here
asserts a speed. The checker reads the crowd's real GET /history and
control's relaunch_history, exactly as a run does (chaos.run.histories).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from roomquake_testutil import until

from chaos.experiment.durations import parse_duration
from chaos.run.histories import collect
from chaos.stack import bring_up, load_stack

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "docker" / "stack.yaml"
CI = {k: parse_duration(v) for k, v in load_stack(STACK).spec.profiles["ci"].items()
      if k.endswith(("_INTERVAL", "_TIMEOUT", "_TTL", "_GRACE", "_TICK", "_MAX", "_BASE", "_WINDOW"))}
LISTENERS = 24
WINDOW_S = 5.0  # the reference stack's default window for quantiles and rates
MARGIN = 4.0  # a busy 2-core machine: every deadline gets this factor


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    old = os.environ.get("ROOMQUAKE_STATE_DIR")
    os.environ["ROOMQUAKE_STATE_DIR"] = str(tmp_path_factory.mktemp("runs"))
    try:
        with bring_up(STACK, backend="local", profile="ci", scale={"edge": 3, "supervisor": 2}) as running:
            yield running
    finally:
        if old is None:
            os.environ.pop("ROOMQUAKE_STATE_DIR", None)
        else:
            os.environ["ROOMQUAKE_STATE_DIR"] = old


def all_hearing(stack, room: str) -> bool:
    target, hearing = stack.probe("crowd.target"), stack.probe("crowd.hearing")
    return bool(target) and hearing is not None and hearing >= target


@pytest.mark.timeout(180)
def test_windowed_probes_follow_the_last_seconds_and_cumulative_ones_stay(stack) -> None:
    room = "windowed"
    stack.load("start", room=room, listeners=LISTENERS, ramp_s=1.0)
    until(lambda: all_hearing(stack, room), 30 * MARGIN, "every listener hearing")
    # frames keep coming: the windowed rate is positive once two scrapes span some time
    until(lambda: (stack.probe("crowd.frame_rate") or 0) > 0, 10 * MARGIN, "a frame rate over the window")
    # joins stopped after the ramp: over the last 5 s there is no join to take a quantile of, since start there is
    until(lambda: stack.probe("crowd.join_attempt_p95") is None, (WINDOW_S + 10) * MARGIN,
          "no join attempt in the window")
    assert stack.probe("crowd.join_attempt_p95", window="cumulative") is not None
    assert stack.probe("crowd.join_latency_p95", window="cumulative") is not None
    assert stack.probe("crowd.join_success_ratio") == 1.0  # cumulative by default: every join so far got in
    assert (stack.probe("crowd.silence_rate") or 0.0) == 0.0  # nobody went silent
    stack.load("drain", fraction=1.0)


@pytest.mark.timeout(240)
def test_history_checker_on_the_crowds_real_histories_after_an_edge_loss(stack) -> None:
    room = "hist-edge"
    stack.load("start", room=room, listeners=LISTENERS, ramp_s=1.0)
    until(lambda: all_hearing(stack, room), 30 * MARGIN, "every listener hearing")
    [edge] = stack.select("hosting", room=room)
    gen_before = stack.probe("room.generation", room=room)
    killed = time.time()
    stack.kill(edge)
    try:
        until(lambda: stack.probe("room.generation", room=room) not in (None, gen_before),
              10 * CI["HEARTBEAT_TIMEOUT"] * MARGIN, "the relaunch")
        until(lambda: all_hearing(stack, room), 30 * MARGIN, "every listener hearing the relaunched room")
        collected = collect(stack, room, back_within=[10.0])
    finally:
        stack.start(edge)
        stack.load("drain", fraction=1.0)
    report = collected.report
    assert report is not None, collected.errors
    assert collected.errors == [] and len(collected.instances) == 1
    assert report.listeners == LISTENERS and report.active == LISTENERS
    # the relaunch comes from control's own record, with the generation the crowd heard next
    assert [r.inferred for r in report.relaunches] == [False]
    relaunch = report.relaunches[-1]
    assert relaunch.generation == stack.probe("room.generation", room=room)
    assert relaunch.reason == "edge_lost" and relaunch.at > killed
    assert relaunch.listeners == LISTENERS and relaunch.never == [] and report.never_heard_count == 0
    assert relaunch.back_within["10"] == 1.0
    # every listener lost frames across the relaunch: its largest gap spans at least the detection threshold
    assert report.max_gap_p50_s is not None and report.max_gap_p50_s >= CI["HEARTBEAT_TIMEOUT"] * 0.8
    assert report.split_brain_count == 0 and report.duplicates == 0
    assert collected.relaunch_records and collected.relaunch_records[-1]["generation"] == relaunch.generation


@pytest.mark.timeout(120)
def test_history_on_demand_from_the_command_line(stack) -> None:
    import json

    from click.testing import CliRunner

    from chaos.cli.main import cli

    room = "hist-cli"
    stack.load("start", room=room, listeners=6, ramp_s=0.5)
    try:
        until(lambda: (stack.probe("crowd.hearing") or 0) >= 6, 30 * MARGIN, "6 listeners hearing")
        text = CliRunner().invoke(cli, ["history", stack.run_id, "--room", room])
        assert text.exit_code == 0, text.output
        assert f"room {room}: 6 listeners (6 listening, 0 gave up)" in text.output
        assert "duplicates 0, out of order 0, split brain 0" in text.output
        doc = CliRunner().invoke(cli, ["history", stack.run_id, "--room", room, "--json"])
        assert doc.exit_code == 0 and json.loads(doc.output)["report"]["listeners"] == 6
    finally:
        stack.load("drain", fraction=1.0)
