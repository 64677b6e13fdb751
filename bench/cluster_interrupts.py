"""Node and packet faults on a real local cluster, interrupted at random instants: nothing is left.

    sudo .venv/bin/python bench/cluster_interrupts.py [--trials 8] [--seed 1] [--bound 240] [--json out.json]

It makes a 3-node local cluster (``roomquake cluster``, name ``rqi``) and
brings the reference stack up on it (``--backend swarm``), once. Each trial
then runs ``roomquake run --attach`` on an experiment that injects, at once,
every fault that acts below the container on a cluster: a worker node lost
(its engine stopped, or its link cut: drawn), the other worker drained,
packet loss and a partition as iptables rules in control-1's namespace, a
paused task and a supervisor stopped (staff reduction scales its service to
0); then it waits. The runner is sent one signal (SIGINT, SIGTERM or SIGKILL:
drawn) at an instant drawn in one of these windows (drawn too):

- ``method``: 0-8 s after the method began (faults being injected);
- ``active``: 8-20 s after it (every fault in place, the wait);
- ``rollback``: 0-4 s after the rollback began (faults being undone).

After SIGKILL, ``roomquake clean`` is run, as a user would. Then it checks
that the runner ended within ``--bound`` seconds, and that nothing of the
faults is left: every node's engine alive, its link up, its swarm state
``ready`` and availability ``active``; no iptables rule of roomquake's
(comment ``rq.``) in any instance's namespace; no paused task; every
service back at its replica count; no runner ledger. The checks of node
state poll for up to 120 s (a revived engine rejoins the swarm). Seeded: the
same seed draws the same trials. Prints one line per trial and a summary.
Needs root and a Docker engine with the stack's images (``roomquake images
build``); the cluster and the stack are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from interrupts import Runner, signal_and_wait  # bench/interrupts.py: `roomquake run` in a subprocess, its lines watched

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "docker" / "stack.yaml"
CLUSTER = "rqi"
SCALE = {"edge": 2, "supervisor": 2, "host": 1}
WINDOWS = {"method": (0.0, 8.0), "active": (8.0, 20.0), "rollback": (0.0, 4.0)}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}
SETTLE_S = 120.0  # a revived engine rejoining, reported ready by the manager, on a loaded machine

EXPERIMENT = """\
title: node and packet faults, interrupted at a random instant (bench/cluster_interrupts.py)
stack: {stack}
profile: ci
scale: {{edge: 2, supervisor: 2, host: 1}}
settle: 60s
method:
  - parallel:
      - {{id: lose, fault: node_loss, how: {how}, node: "{lost}"}}
      - {{id: drain, fault: node_drain, node: "{drained}"}}
      - {{id: lossy, fault: packet_loss, target: {{instance: control-1}}, probability: 0.2}}
      - {{id: cut, fault: partition, target: {{instance: control-1}}, from: {{instance: state-1}}}}
      - {{id: freeze, fault: pause, target: {{instance: host-1}}}}
      - {{id: fewer, fault: stop, target: {{instance: supervisor-2}}}}
  - wait: 20s
"""


@dataclass
class Trial:
    n: int
    window: str
    signal: str
    delay_s: float
    how: str
    lost: int
    sent: bool = False
    exit_code: int | None = None
    ended_s: float | None = None
    cleaned: str | None = None
    left: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def leftovers(run_id: str, state: Path) -> list[str]:
    """What of the faults is still in place (empty: nothing)."""
    from chaos.cluster import nodes as local
    from chaos.faults import iptables
    from chaos.stack.bringup import attach_record
    from chaos.stack.netns import namespace

    found: list[str] = []
    stack = attach_record(run_id)  # read afresh: an attached run renews the stack's instances
    manager = stack.backend.client  # type: ignore[attr-defined]  # a swarm backend: the manager's engine
    for node in manager.nodes.list():
        attrs = node.attrs
        name = attrs["Description"]["Hostname"]
        if attrs["Status"]["State"] != "ready":
            found.append(f"node {name} {attrs['Status']['State']}")
        if attrs["Spec"]["Availability"] != "active":
            found.append(f"node {name} {attrs['Spec']['Availability']}")
        mine = local.find(node.id)
        if mine is not None:
            if not local.engine_alive(mine):
                found.append(f"node {name}: engine not running")
            if not local.link_up(mine):
                found.append(f"node {name}: link down")
    for service in manager.services.list(filters={"label": f"io.roomquake.run={run_id}"}):
        replicas = service.attrs["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas")
        if replicas != 1:
            found.append(f"service {service.name}: {replicas} replicas")
    for instance in stack.instances():
        located = stack.container_of(instance.name)
        if located is None:
            continue  # not running right now (a task being rescheduled): the replica count covers it
        engine, container = located
        if engine.api.inspect_container(container)["State"].get("Paused"):
            found.append(f"{instance.name} paused")
        ns = namespace(stack, instance.name)
        if ns is not None:
            rules = iptables._iptables(ns.pid, ["-S"]).stdout.splitlines()
            found += [f"{instance.name}: rule {r}" for r in rules if r.startswith("-A ") and "rq." in r]
    found += [f"ledger {p.name}" for p in state.glob("runner-*.json")]
    return found


def settled(run_id: str, state: Path, timeout: float) -> list[str]:
    """Leftovers once the cluster had time to settle (a revived node rejoining), polled."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            left = leftovers(run_id, state)
        except Exception as err:  # noqa: BLE001 - a manager busy with a rejoin: ask again
            left = [f"could not check: {type(err).__name__}: {err}"]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(2.0)


def one_trial(trial: Trial, run_id: str, work: Path, state: Path, bound: float) -> Trial:
    experiment = work / f"trial-{trial.n}.yaml"
    drained = 3 if trial.lost == 2 else 2
    experiment.write_text(EXPERIMENT.format(stack=STACK, how=trial.how, lost=trial.lost, drained=drained))
    run = Runner(["--attach", run_id, "--journal-dir", str(work / f"journals-{trial.n}"), str(experiment)], os.environ.copy())
    anchor = "-- rollback" if trial.window == "rollback" else "-- method"
    if not run.wait_line(anchor, 300):
        trial.problems.append(f"never reached {anchor!r}; output: {' | '.join(run.lines[-5:])}")
    time.sleep(trial.delay_s)
    signal_and_wait(run, trial, SIGNALS[trial.signal], bound)
    if trial.sent and trial.signal != "SIGKILL" and trial.exit_code != 3:
        trial.problems.append(f"exit {trial.exit_code}, not 3; output: {' | '.join(run.lines[-4:])}")
    if trial.signal == "SIGKILL" or trial.problems:
        done = subprocess.run([sys.executable, "-m", "chaos", "clean"], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        trial.cleaned = " ".join(line for line in done.stdout.splitlines() if "undid" in line) or f"exit {done.returncode}"
    trial.left = settled(run_id, state, SETTLE_S)
    if trial.left:
        trial.problems.append("left behind: " + ", ".join(trial.left))
    return trial


def draw(rng: random.Random, n: int) -> Trial:
    window = rng.choice(list(WINDOWS))
    low, high = WINDOWS[window]
    return Trial(n=n, window=window, signal=rng.choice(list(SIGNALS)), delay_s=round(rng.uniform(low, high), 2),
                 how=rng.choice(["stop", "partition"]), lost=rng.choice([2, 3]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bound", type=float, default=240.0, help="seconds a run may take to end after the signal")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/cluster_interrupts.py: a local cluster needs root", file=sys.stderr)
        return 2
    from chaos.cluster import down, up
    from chaos.stack import start_stack

    rng = random.Random(args.seed)
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="rq-cluster-interrupts-") as tmp:
        work = Path(tmp)
        state = work / "state"
        state.mkdir()
        os.environ["ROOMQUAKE_STATE_DIR"] = str(state)  # our own registry: a developer's runs are never touched
        os.environ.pop("DOCKER_HOST", None)
        began = time.monotonic()
        up(3, CLUSTER)
        try:
            stack = start_stack(STACK, backend="swarm", scale=SCALE, profile="ci", keep=True)
            print(f"cluster {CLUSTER} and stack {stack.run_id} up in {time.monotonic() - began:.1f}s", flush=True)
            try:
                for n in range(args.trials):
                    trial = one_trial(draw(rng, n), stack.run_id, work, state, args.bound)
                    trials.append(trial)
                    print(f"{'ok  ' if trial.ok else 'FAIL'} #{n:<2} {trial.signal:7} {trial.window:8} +{trial.delay_s:5.2f}s "
                          f"node {trial.lost} {trial.how:9} exit {trial.exit_code} in {trial.ended_s}s"
                          f"{' clean: ' + trial.cleaned if trial.cleaned else ''} {'; '.join(trial.problems)}", flush=True)
            finally:
                from chaos.stack.bringup import attach_record

                attach_record(stack.run_id).down()
        finally:
            down(CLUSTER)
    ok = sum(t.ok for t in trials)
    ends = sorted(t.ended_s for t in trials if t.ended_s is not None and t.signal != "SIGKILL")
    by_signal = {s: sum(1 for t in trials if t.signal == s) for s in SIGNALS}
    print(f"{ok}/{len(trials)} trials left nothing (signals: "
          + ", ".join(f"{k} {v}" for k, v in by_signal.items()) + "; windows: "
          + ", ".join(f"{w} {sum(1 for t in trials if t.window == w)}" for w in WINDOWS) + ")"
          + (f"; SIGINT/SIGTERM to exit: median {ends[len(ends) // 2]:.1f}s, max {ends[-1]:.1f}s" if ends else ""))
    if args.json:
        args.json.write_text(json.dumps([{**asdict(t), "ok": t.ok} for t in trials], indent=1))
    return 0 if ok == len(trials) else 1


if __name__ == "__main__":
    sys.exit(main())
