"""SIGINT/SIGTERM at random instants of a run: it ends in time, exits 3, writes a journal, leaves nothing.

    .venv/bin/python bench/interrupts.py [--backend local|docker|both] [--trials 20] [--seed 1]
                                         [--bound 60] [--json out.json]

Each trial runs ``roomquake run`` on a small experiment (a latency toxic, a
paused supervisor and a killed edge that comes back after 2 s, then a wait)
as a user would, in a fresh process, and sends it one signal (SIGINT or
SIGTERM, drawn) at an instant drawn from one of these windows (drawn too):

- ``start``: 0-0.6 s after the process was started (before or while the
  command line loads; the handler is installed by chaos/__init__.py, the
  first roomquake code to run; a signal during Python's own start-up
  before it gets Python's default and is counted apart as "pre", with the
  check that nothing was started);
- ``bring_up``: 0-4 s after the run's first line (the stack is coming up);
- ``method``: 0-4 s after the method began (faults being injected, active);
- ``teardown``: 0-0.8 s after the rollback began (rollback and teardown; a run that ended first is counted as not signalled).

Then it checks: the process ended within ``--bound`` seconds of the signal;
it exited 3; it wrote a journal (a run that had not started yet when the
signal came also writes one: the runner's first checkpoint aborts it); and
nothing of the run is left: no process carrying the trial's marker in its
environment, no container, network or volume labelled with the trial
process as owner, no record in the run registry. What a failed trial left
is removed before the next one. The phase the signal really hit is read
from the journal. Seeded: the same seed draws the same trials.

Prints one line per trial and a summary; ``--json`` writes every trial.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = "ROOMQUAKE_INTERRUPT_TRIAL"
WINDOWS = {"start": 0.6, "bring_up": 4.0, "method": 4.0, "teardown": 0.8}
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}

EXPERIMENT = f"""
title: interrupt me at any instant
stack: {ROOT / "docker" / "stack.yaml"}
profile: ci
scale: {{edge: 2, supervisor: 2, host: 2, crowd: 1}}
seed: 3
load: {{room: launch, listeners: 10, ramp: 500ms}}
settle: 20s
steady_state:
  - {{probe: room.state, expect: live}}
method:
  - {{id: slow, fault: latency, link: edge->state, latency: 20ms, direction: both}}
  - {{id: freeze, fault: pause, target: {{service: supervisor, count: 1}}}}
  - {{id: lose, fault: kill, target: {{service: edge, replica: 2}}, for: 2s}}
  - wait: 3s
"""


@dataclass
class Trial:
    n: int
    backend: str
    window: str
    signal: str
    delay_s: float
    pid: int = 0
    sent: bool = False
    exit_code: int | None = None
    ended_s: float | None = None  # from the signal to the end of the process
    journal: str | None = None
    verdict: str | None = None
    phase_hit: str | None = None
    left: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ended_early: str | None = None  # the run ended by itself before its window: not signalled
    before_handler: bool = False  # signalled during Python's own start-up, before any roomquake code ran

    @property
    def ok(self) -> bool:
        return not self.problems


def signal_and_wait(run: "Runner", trial: Any, signum: int, bound: float, send: bool = True) -> None:
    """Send ``signum`` to the run if it still runs (and ``send``), then wait up to ``bound`` for it to end.

    Sets ``trial.sent``, ``trial.exit_code`` and ``trial.ended_s`` (signal to exit); a run that outlives
    ``bound`` is a problem of the trial and is killed.
    """
    sent = time.monotonic()
    if send and run.proc.poll() is None:
        run.proc.send_signal(signum)
        trial.sent = True
    try:
        trial.exit_code = run.proc.wait(timeout=bound)
        trial.ended_s = round(time.monotonic() - sent, 3)
    except subprocess.TimeoutExpired:
        trial.problems.append(f"still running {bound:g}s after {trial.signal}")
        run.proc.kill()
        trial.exit_code = run.proc.wait()


class Runner:
    """``roomquake run`` in a subprocess whose output lines are watched as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "chaos", "run", *args], cwd=ROOT, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(text in line for line in list(self.lines)):
                return True
            time.sleep(0.01)
        return False


def _environ_has(pid: str, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read()
    except OSError:
        return False


def marked_processes(trial_id: str) -> list[int]:
    marker = f"{MARKER}={trial_id}\0".encode()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _environ_has(p, marker)]


def labelled_of(pid: int) -> list[str]:
    try:
        import docker
    except ImportError:
        return []
    try:
        client = docker.from_env(timeout=30)
    except Exception:  # noqa: BLE001 - no engine: nothing can be left there
        return []
    query = {"label": f"io.roomquake.owner-pid={pid}"}
    found = [f"container {c['Names'][0].lstrip('/')}" for c in client.api.containers(all=True, filters=query)]
    found += [f"network {n['Name']}" for n in client.api.networks(filters=query)]
    found += [f"volume {v['Name']}" for v in (client.api.volumes(filters=query) or {}).get("Volumes") or []]
    client.close()
    return found


def remove_leftovers(trial: Trial, trial_id: str, state_dir: Path) -> None:
    """What a failed trial left, removed so that the next trial starts clean (by pid and by label only)."""
    for pid in marked_processes(trial_id):
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except OSError:
            pass
    if any(item.split()[0] in ("container", "network", "volume") for item in trial.left):
        import docker

        client = docker.from_env(timeout=30)
        query = {"label": f"io.roomquake.owner-pid={trial.pid}"}
        for c in client.api.containers(all=True, filters=query):
            client.api.remove_container(c["Id"], force=True, v=True)
        for n in client.api.networks(filters=query):
            client.api.remove_network(n["Id"])
        for v in (client.api.volumes(filters=query) or {}).get("Volumes") or []:
            client.api.remove_volume(v["Name"], force=True)
        client.close()
    for record in state_dir.glob("*.json"):
        record.unlink(missing_ok=True)


def phase_at(journal: dict, wall: float) -> str:
    phase = "before the run"
    for event in journal.get("events", []):
        if event["wall"] > wall:
            break
        if event["kind"] == "phase_started":
            phase = event["phase"]
        elif event["kind"] == "run_started":
            phase = "start"
    return phase


def one_trial(trial: Trial, experiment: Path, work: Path, bound: float) -> Trial:
    trial_id = f"{os.getpid()}-{trial.n}"
    journals = work / f"journals-{trial.n}"
    state_dir = work / "state"
    env = {**os.environ, MARKER: trial_id, "ROOMQUAKE_STATE_DIR": str(state_dir), "PYTHONUNBUFFERED": "1"}
    run = Runner(["--backend", trial.backend, "--journal-dir", str(journals), str(experiment)], env)
    trial.pid = run.proc.pid
    anchor_seen = {
        "start": True,
        "bring_up": run.wait_line(" run ", 60) if trial.window == "bring_up" else True,
        "method": run.wait_line("-- method", 180) if trial.window == "method" else True,
        "teardown": run.wait_line("-- rollback", 240) if trial.window == "teardown" else True,
    }[trial.window]
    if not anchor_seen and run.proc.poll() is None:
        trial.problems.append(f"never reached its {trial.window} window; output: {' | '.join(run.lines[-5:])}")
    elif not anchor_seen:  # the run ended by itself first (e.g. errored on an overloaded machine): no interrupt tested
        trial.ended_early = next((line.strip() for line in run.lines if "verdict:" in line), "ended")
    if trial.window == "start":
        time.sleep(max(0.0, run.started + trial.delay_s - time.monotonic()))
    else:
        time.sleep(trial.delay_s)
    sent_wall = time.time()
    signal_and_wait(run, trial, SIGNALS[trial.signal], bound, send=trial.ended_early is None)
    started_nothing = not any(" run " in line or "journal:" in line for line in run.lines)
    if trial.window == "start" and started_nothing and trial.exit_code in (-2, -15, 1, 130, 143):
        # Python's start-up (site, runpy) runs before chaos/__init__ can install the handler: Python's
        # default applies there. Counted apart; that nothing was started is still checked below.
        trial.before_handler = trial.exit_code == -15 or trial.exit_code == -2 or any("KeyboardInterrupt" in line for line in run.lines)
    if trial.ended_early is None and trial.sent and not trial.before_handler and trial.exit_code != 3:
        trial.problems.append(f"exit code {trial.exit_code}, not 3; output: {' | '.join(run.lines[-4:])}")
    written = sorted(journals.glob("*.json")) if journals.exists() else []
    if not written and not trial.before_handler:
        trial.problems.append("no journal written")
    elif written:
        doc = json.loads(written[-1].read_text())
        trial.journal, trial.verdict = str(written[-1]), doc.get("verdict")
        trial.phase_hit = phase_at(doc, sent_wall)
    time.sleep(0.2)  # processes the run ended may still be leaving /proc
    trial.left = [f"process {pid}" for pid in marked_processes(trial_id)] + labelled_of(trial.pid)
    trial.left += [f"registry record {p.name}" for p in state_dir.glob("*.json")] if state_dir.exists() else []
    if trial.left:
        trial.problems.append("left behind: " + ", ".join(trial.left))
        remove_leftovers(trial, trial_id, state_dir)
    return trial


def draw(rng: random.Random, n: int, backends: list[str], windows: tuple[str, ...] = tuple(WINDOWS)) -> Trial:
    window = rng.choice(list(windows))
    return Trial(n=n, backend=backends[n % len(backends)], window=window, signal=rng.choice(list(SIGNALS)),
                 delay_s=round(rng.uniform(0.0, WINDOWS[window]), 3))


def run_trials(backend: str, trials: int, seed: int, bound: float, out=sys.stdout,
               windows: tuple[str, ...] = tuple(WINDOWS)) -> list[Trial]:
    backends = ["local", "docker"] if backend == "both" else [backend]
    rng = random.Random(seed)
    done = []
    with tempfile.TemporaryDirectory(prefix="rq-interrupts-") as tmp:
        work = Path(tmp)
        experiment = work / "interrupt.yaml"
        experiment.write_text(EXPERIMENT)
        for n in range(trials):
            trial = one_trial(draw(rng, n, backends, windows), experiment, work, bound)
            done.append(trial)
            status = ("pre " if trial.before_handler else "ok  " if trial.sent else "late") if trial.ok else "FAIL"
            print(f"{status} #{n:<3} {trial.backend:6} {trial.signal:7} {trial.window:8} +{trial.delay_s:5.2f}s "
                  f"hit {trial.phase_hit or '-':20} exit {trial.exit_code} in {trial.ended_s}s "
                  f"{'; '.join(trial.problems)}", file=out, flush=True)
    return done


def summary(trials: list[Trial]) -> list[str]:
    lines = []
    for backend in sorted({t.backend for t in trials}):
        mine = [t for t in trials if t.backend == backend]
        ends = [t.ended_s for t in mine if t.ended_s is not None]
        failed = [t for t in mine if not t.ok]
        late = [t for t in mine if not t.sent]
        early = [t for t in mine if t.before_handler]
        hits: dict[str, int] = {}
        for t in mine:
            hits[t.phase_hit or "-"] = hits.get(t.phase_hit or "-", 0) + 1
        lines.append(
            f"{backend}: {len(mine) - len(failed)}/{len(mine)} trials ok ({len(late)} ended before the signal, "
            f"{len(early)} signalled during Python's start-up, before roomquake's handler: nothing started); phases hit "
            + ", ".join(f"{k} {v}" for k, v in sorted(hits.items()))
            + (f"; signal to exit: median {statistics.median(ends):.2f}s, max {max(ends):.2f}s" if ends else "")
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("local", "docker", "both"), default="local")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--bound", type=float, default=60.0, help="seconds a run may take to end after the signal")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--windows", default=",".join(WINDOWS), help=f"which of {', '.join(WINDOWS)} to draw from")
    args = parser.parse_args()
    trials = run_trials(args.backend, args.trials, args.seed, args.bound, windows=tuple(args.windows.split(",")))
    for line in summary(trials):
        print(line)
    if args.json:
        args.json.write_text(json.dumps([{**asdict(t), "ok": t.ok} for t in trials], indent=1))
    return 0 if all(t.ok for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
