"""Timeline planning, target picking, events, progress lines, ledger and the run CLI's validation gate."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from chaos.cli.main import cli
from chaos.experiment import model as m
from chaos.experiment.validate import validate_text
from chaos.labels import RunIdentity
from chaos.run import events as ev
from chaos.run import timeline
from chaos.faults import FaultContext, kinds
from chaos.faults.network import toxic_name
from chaos.faults.undo import perform
from chaos.run.ledger import Ledger, sweep_dead_runs
from chaos.run.progress import line_for
from chaos.faults.targets import TargetError, link_proxies, pick, resolve

from .fakes import FakeProxy, FakeStack


def exp(body: str) -> m.Experiment:
    experiment, problems = validate_text("title: t\n" + body)
    assert not problems, [str(p) for p in problems]
    assert experiment is not None
    return experiment


def test_timeline_starts_and_ends() -> None:
    e = exp("""
method:
  - {id: a, fault: kill, target: {service: edge}}
  - {id: b, fault: latency, link: edge->state, latency: 1s, for: 2s}
  - wait: 1s
  - {id: c, probe: room.state, expect: live, within: 3s}
  - parallel:
      - {id: d, fault: pause, target: {service: edge}, for: 1s}
      - {id: e, fault: down, link: crowd->edge, at: 500ms, for: 2s}
  - {id: f, probe: room.state, expect: live, during: b}
  - {id: g, probe: room.state, expect: live, during: a}
""")
    plan = {p.id: (p.start, p.end) for p in timeline.plan(e.method)}
    assert plan["a"] == (0.0, 0.0)
    assert plan["b"] == (0.0, 2.0)
    assert plan["c"] == (3.0, 6.0)  # after b (2s) and the wait (1s)
    assert plan["d"] == (6.0, 7.0) and plan["e"] == (6.5, 8.5)
    assert plan["f"] == (0.0, 2.0)  # during b: b's window
    assert plan["g"] == (0.0, 8.5)  # during a (no `for`): until the method's end
    assert timeline.length(e.method) == 8.5


def test_timeline_length_counts_trailing_waits() -> None:
    assert timeline.length(exp("method:\n  - wait: 2s\n  - wait: 1s\n").method) == 3.0


def test_targets_filters_and_seeded_pick() -> None:
    stack = FakeStack(edges=4)
    stack.load("start")
    rng = random.Random(1)
    assert resolve(m.Target(service="edge"), stack, rng) == ["edge-1", "edge-2", "edge-3", "edge-4"]
    assert resolve(m.Target(service="edge", replica=3), stack, rng) == ["edge-3"]
    assert resolve(m.Target(instance="edge-2"), stack, rng) == ["edge-2"]
    assert resolve(m.Target(service="edge", hosting="launch"), stack, rng) == ["edge-1"]
    assert resolve(m.Target(select={"name": "hosting", "room": "launch"}), stack, rng) == ["edge-1"]
    assert resolve(m.Target(label={"service": "supervisor", "replica": "2"}), stack, rng) == ["supervisor-2"]
    assert len(resolve(m.Target(service="edge", count=2), stack, rng)) == 2
    assert len(resolve(m.Target(service="edge", percent=50), stack, rng)) == 2
    assert len(resolve(m.Target(service="edge", percent=1), stack, rng)) == 1
    names = ["a", "b", "c", "d", "e"]
    assert pick(names, random.Random(3), count=2) == pick(names, random.Random(3), count=2)
    with pytest.raises(TargetError, match="matches no instance"):
        resolve(m.Target(service="edge", instance="edge-9"), stack, rng)


def test_link_proxies() -> None:
    stack = FakeStack(edges=3)
    rng = random.Random(0)
    assert link_proxies("crowd->edge", stack, None, rng) == ["crowd->edge-1", "crowd->edge-2", "crowd->edge-3"]
    assert link_proxies("crowd->edge-2", stack, None, rng) == ["crowd->edge-2"]
    assert link_proxies("crowd->edge", stack, m.Target(service="edge", replica=3), rng) == ["crowd->edge-3"]
    with pytest.raises(TargetError, match="links: control->state, crowd->edge"):
        link_proxies("host->edge", stack, None, rng)


def test_toxics_use_toxiproxy_units() -> None:
    e = exp("""
method:
  - {fault: latency, link: a->b, latency: 300ms, jitter: 50ms}
  - {fault: slicer, link: a->b, average_size: 64, size_variation: 8, delay: 2ms}
  - {fault: bandwidth, link: a->b, rate: 100}
  - {fault: timeout, link: a->b, timeout: 1s}
  - {fault: limit_data, link: a->b, bytes: 1000}
  - {fault: slow_close, link: a->b, delay: 1500ms}
  - {fault: reset_peer, link: a->b}
  - {fault: jitter, link: a->b, jitter: 20ms}
""")
    got = [kinds()[step.fault].handler.toxic_of(step) for step in e.method]  # type: ignore[union-attr]
    assert got == [
        ("latency", {"latency": 300, "jitter": 50}),
        ("slicer", {"average_size": 64, "size_variation": 8, "delay": 2000}),
        ("bandwidth", {"rate": 100}),
        ("timeout", {"timeout": 1000}),
        ("limit_data", {"bytes": 1000}),
        ("slow_close", {"delay": 1500}),
        ("reset_peer", {"timeout": 0}),
        ("latency", {"latency": 0, "jitter": 20}),
    ]
    assert toxic_name("r1", "method[0]:latency", "upstream") == "rq.r1.method_0__latency.upstream"


def test_undo_is_data() -> None:
    stack, proxy = FakeStack(), FakeProxy()
    ctx = FaultContext(stack, lambda: proxy)
    stack.pause("edge-2")
    proxy.set_enabled("crowd->edge-1", False)
    perform(("stack", "resume", "edge-2"), ctx)
    perform(("proxy", "set_enabled", "crowd->edge-1", "true"), ctx)
    stack.kill("edge-3")
    perform(("stack", "start_if_down", "edge-3"), ctx)
    perform(("stack", "start_if_down", "edge-1"), ctx)  # running: left alone
    assert {i.state for i in stack.instances()} == {"running"} and not proxy.disabled
    assert ("start", "edge-1") not in stack.calls


def test_events_serialise_without_per_event_code() -> None:
    bus = ev.EventBus()
    seen: list[ev.Event] = []
    bus.subscribe(seen.append)
    bus.emit(ev.FaultInjected(step="s", fault="kill", hit=["edge-1"], params={}, planned_at=1.0))
    data = seen[0].to_json()
    assert data["kind"] == "fault_injected" and data["hit"] == ["edge-1"] and data["wall"] > 0
    json.dumps(data)
    assert ev.CheckResult.kind() == "check_result"


def test_progress_lines() -> None:
    line = line_for(ev.CheckResult(check="relaunched", phase="recovery", probe="room.relaunches", expect=">= 1",
                                   mode="within", ok=True, message="", observed=[(1.0, 1.0)], recovery_s=1.25))
    assert line == "ok   recovery: relaunched: >= 1 after 1.25s (observed 1)"
    fail = line_for(ev.CheckResult(check="x", phase="method", probe="p", expect="e", mode="once", ok=False, message="x: boom"))
    assert fail == "FAIL method: x: boom"
    assert line_for(ev.VerdictReached(verdict="deviated", reason="r", exit_code=0, as_declared=True)).startswith(
        "verdict: DEVIATED (as declared")
    assert line_for(ev.PhaseStarted(phase="bring_up")) is None


def test_ledger_lifecycle_and_sweep(tmp_path: Path) -> None:
    ledger = Ledger(RunIdentity(), tmp_path)
    ledger.stack("stack-1", "local", attached=True, proxy_url="http://127.0.0.1:1")
    ledger.add(("stack", "resume", "edge-1"))
    ledger.add(("proxy", "remove_toxic", "a->b-1", "t"))
    ledger.done(("stack", "resume", "edge-1"))
    record = json.loads(ledger.path.read_text())
    assert record["undo"] == [["proxy", "remove_toxic", "a->b-1", "t"]]
    assert sweep_dead_runs(tmp_path) == []  # its owner (this process) is alive: never touched
    ledger.close()
    assert not ledger.path.exists()
    dead = RunIdentity(pid=2**22 + 7)  # no such process
    Ledger(dead, tmp_path).add(("stack", "resume", "edge-1"))
    # --dry-run: says what it would do and leaves the ledger for the real sweep
    assert sweep_dead_runs(tmp_path, dry_run=True) == [f"{dead.run_id}: no stack recorded (died during bring-up)"]
    assert len(list(tmp_path.glob("runner-*.json"))) == 1
    assert sweep_dead_runs(tmp_path) == [f"{dead.run_id}: no stack recorded (died during bring-up); "
                                         "roomquake clean removes labelled containers"]
    assert not list(tmp_path.glob("runner-*.json"))


def test_run_cli_refuses_invalid_files_and_runs_nothing(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("title: t\nstack: nowhere.yaml\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: t\nmethod:\n  - fault: kil\n    target: {service: edge}\n")
    result = CliRunner().invoke(cli, ["run", "--backend", "local", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:3:12: method[0].fault: unknown fault 'kil'; did you mean 'kill'?" in result.output
    assert "nothing was run" in result.output


def test_run_cli_refuses_a_missing_stack(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("title: t\nstack: nowhere.yaml\n")
    result = CliRunner().invoke(cli, ["run", "--backend", "local", str(path)])
    assert result.exit_code == 2
    assert f"{path}:2:8: stack: stack file 'nowhere.yaml' not found" in result.output


def test_runner_api_reports_a_missing_stack_as_errored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaos.run import RunOptions, Runner, Verdict
    from chaos.run.journal import read

    monkeypatch.setenv("ROOMQUAKE_STATE_DIR", str(tmp_path / "state"))
    result = Runner(exp("stack: nowhere.yaml\n"), tmp_path / "x.yaml",
                    RunOptions(backend="local", journal_dir=tmp_path, progress=False)).run()
    assert result.verdict is Verdict.ERRORED and result.exit_code == 4
    assert "stack file 'nowhere.yaml' not found" in result.reason
    assert read(result.journal)["verdict"] == "errored"


def test_sampler_keeps_its_rate_when_a_probe_is_slow() -> None:
    import threading
    import time

    from chaos.run.observe import ProbeReader, Sampler

    stack = FakeStack()
    stack.value_overrides["room.state"] = lambda: (time.sleep(0.6), "live")[1]  # each read takes 0.6s
    start = time.monotonic()
    sampler = Sampler(ProbeReader(stack), lambda: time.monotonic() - start, 0.25, threading.Event())
    key = sampler.add_probe("room.state", {})
    sampler.start()
    time.sleep(2.5)
    sampler.stop()
    points = sampler.series.data[key]
    reads = sorted(sampler.reads(key), key=lambda r: r.started)
    # reads overlap (one starts before the previous one is answered): a 0.6s read does not hold up the next
    assert any(b.started < a.t for a, b in zip(reads, reads[1:])), reads
    assert len(points) == len(reads) >= 3
    assert [t for t, _ in points] == sorted(t for t, _ in points)
    assert all(r.started < r.t for r in reads)  # every read knows when it was asked for


def test_windows_tell_unreadable_from_violated() -> None:
    from chaos.experiment.expect import parse_expectation
    from chaos.run.checks import window
    from chaos.run.observe import Watch

    def judge(values: list[object]):
        watch = Watch("k", parse_expectation("== 0"), 0.0, 10.0)
        for i, value in enumerate(values):
            watch.feed(float(i), value)
        return window("no-kicks", watch, "throughout 10s")

    assert judge([0, 0, None, 0]).ok  # one unreadable sample is not a kick
    outcome = judge([0, None, 3, 0])
    assert not outcome.ok and "violated by 3 at t=2.00s (1 of 4 samples, 1 unreadable)" in outcome.message
    outcome = judge([None, None, None, 0])
    assert not outcome.ok and "3 of 4 samples unreadable (from t=0.00s): nothing to judge by" in outcome.message
    assert not judge([]).ok


def test_progress_says_not_disturbed_and_shows_no_time() -> None:
    accepted = line_for(ev.CheckResult(check="back", phase="recovery", probe="p", expect=">= 0.9", mode="within", ok=True,
                                       message="", outcome="not_disturbed"))
    assert accepted == "ok   recovery: back: not disturbed (accepted; no recovery time)"
    refused = line_for(ev.CheckResult(check="back", phase="recovery", probe="p", expect=">= 0.9", mode="within", ok=False,
                                      message="back: not disturbed: ...", outcome="not_disturbed"))
    assert refused == "FAIL recovery: back: not disturbed: ..."


def test_a_part_with_its_undo_ahead_is_in_the_ledger_before_it_acts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Packet rules: a SIGKILL between adding them and recording their undo must leave the undo recorded."""
    from chaos.faults import Injection, Part, kinds, run_parts
    from chaos.faults import iptables

    monkeypatch.setattr(iptables, "require", lambda: None)
    step = exp("method:\n  - {id: drop, fault: packet_loss, target: {service: edge, count: 2}, probability: 0.5}\n").method[0]
    stack = FakeStack(edges=3)
    parts = kinds()["packet_loss"].handler.prepare(step, "drop", FaultContext(stack=stack, make_proxy=FakeProxy,  # type: ignore[arg-type]
                                                                                   rng=random.Random(1), run_id="r1"))
    assert [p.ahead for p in parts] == [("netfilter", "remove", p.hit, "rq.r1.drop") for p in parts] and len(parts) == 2

    ledger = Ledger(RunIdentity(), tmp_path)
    undo = ("netfilter", "remove", "edge-1", "rq.r1.drop")
    seen: list[list[list[str]]] = []

    def act() -> tuple[str, ...]:
        seen.append(json.loads(ledger.path.read_text())["undo"])
        raise KeyboardInterrupt  # as if killed right after the rules went in

    injected = Injection("drop", "packet_loss", {})
    with pytest.raises(KeyboardInterrupt):
        run_parts([Part("edge-1", act, ahead=undo)], injected.register, ledger.add)
    assert seen == [[list(undo)]]
    ledger.close()


def test_the_runner_writes_an_undo_given_ahead_once(tmp_path: Path) -> None:
    from chaos.faults import Injection
    from chaos.run import RunOptions, Runner

    runner = Runner(exp("stack: nowhere.yaml\n"), tmp_path / "x.yaml", RunOptions(backend="local", progress=False))
    runner.ledger = Ledger(RunIdentity(), tmp_path)
    undo = ("netfilter", "remove", "edge-1", "rq.r1.drop")
    active = Injection("drop", "packet_loss", {})
    runner._ahead(undo)
    runner._registrar(active)("edge-1", undo)
    runner._registrar(active)("edge-2", ("netfilter", "remove", "edge-2", "rq.r1.drop"))  # not ahead: written now
    assert json.loads(runner.ledger.path.read_text())["undo"] == [list(undo), ["netfilter", "remove", "edge-2", "rq.r1.drop"]]
    assert active.parts == [("edge-1", undo), ("edge-2", ("netfilter", "remove", "edge-2", "rq.r1.drop"))]
    runner.ledger.close()


def test_server_faults_write_their_undo_ahead() -> None:
    """A swarm stop scales the service to 0 and then waits for its task to end: a runner killed in that wait
    left the service at 0 replicas, its undo not yet written (found by bench/cluster_interrupts.py)."""
    from chaos.faults import kinds

    stack = FakeStack(edges=3)
    ctx = FaultContext(stack=stack, make_proxy=FakeProxy, rng=random.Random(1), run_id="r1")  # type: ignore[arg-type]
    for fault, undo in (("kill", "start_if_down"), ("stop", "start_if_down"), ("pause", "resume")):
        step = exp(f"method:\n  - {{id: s, fault: {fault}, target: {{instance: edge-2}}}}\n").method[0]
        (part,) = kinds()[fault].handler.prepare(step, "s", ctx)
        assert part.ahead == ("stack", undo, "edge-2")
    step = exp("method:\n  - {id: s, fault: restart, target: {instance: edge-2}}\n").method[0]
    (part,) = kinds()["restart"].handler.prepare(step, "s", ctx)
    assert part.ahead is None  # nothing to undo: it is back by itself


def test_a_part_that_fails_half_way_is_still_rolled_back() -> None:
    from chaos.faults import Injection, Part, run_parts

    undo = ("stack", "start_if_down", "supervisor-2")

    def act() -> tuple[str, ...]:
        raise RuntimeError("scaled to 0, then the wait for its task to end timed out")

    injected = Injection("fewer", "stop", {})
    with pytest.raises(RuntimeError):
        run_parts([Part("supervisor-2", act, ahead=undo)], injected.register)
    assert injected.parts == [("supervisor-2", undo)]  # the in-process rollback starts it again
