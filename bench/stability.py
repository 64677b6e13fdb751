"""The same verdict under load: every shipped experiment, N times, alone and beside a CPU hog.

For each backend and each cell ("alone", then "hog": ``stress-ng --cpu 4``
started before the cell's first run and ended, by its pid, after its last),
each shipped experiment runs ``--runs`` times, the experiments interleaved
(run 1 of each, then run 2 of each, ...) so that a passing disturbance of the
machine does not land on one experiment only. Then one table: per experiment
and cell, the verdicts (one verdict per cell is the target), every recovery
time (median and range, only for checks whose disturbance was seen), checks
that were not disturbed, relaunches nobody injected (from each journal's
relaunch audit; the target is zero in baseline and no-flap), and the load
average seen; all relaunches are counted too (one during a fault is not
unexpected, e.g. a flap under no-flap's latency, which that experiment's own
checks catch). staff-reduction also gets its slowdown: its reduced-staff
relaunch against the full-staff one of the same run.

    .venv/bin/python bench/stability.py                          # local: 10 runs per cell; docker: 5
    .venv/bin/python bench/stability.py --backend local --runs 2 # a quick look
    .venv/bin/python bench/stability.py --backend docker --experiments edge-loss,no-flap --cells hog

Figures are reported, never asserted; journals stay in --journal-dir.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chaos.experiment import load_experiment  # noqa: E402
from chaos.experiment.stackcheck import backends_for  # noqa: E402
from chaos.run import RunOptions, Runner  # noqa: E402
from chaos.run.journal import read  # noqa: E402

DEFAULT_RUNS = {"local": 10, "docker": 5}
HOG_CPUS = 4
HOG_WARMUP_S = 5.0  # let the load average climb before the first run of the hog cell
# (slower, reference) recovery checks whose ratio the table shows: the point of that experiment
SLOWDOWNS = {"staff-reduction": ("relaunched-reduced-staff", "relaunched-full-staff")}


@dataclass
class Outcome:
    experiment: str
    backend: str
    cell: str
    run: int
    verdict: str  # passed | deviated | aborted | errored; "as declared" for a known weakness shown
    reason: str
    recovery: dict[str, float]
    back_during: dict[str, float]  # recoveries that came while their fault lasted: seconds from its injection
    not_disturbed: list[str]
    unexpected_relaunches: int | None
    relaunches: int | None
    load: float  # 1-minute load average when the run ended
    seconds: float
    journal: str


@dataclass
class Cell:
    outcomes: list[Outcome] = field(default_factory=list)

    def verdicts(self) -> Counter[str]:
        return Counter(o.verdict for o in self.outcomes)


@contextlib.contextmanager
def cpu_hog(cpus: int) -> Iterator[int]:
    """``stress-ng --cpu N`` in its own session, ended by its pid (then its process group, which is its own)."""
    exe = shutil.which("stress-ng")
    if exe is None:
        raise SystemExit("stress-ng is not installed (Debian: apt-get install stress-ng)")
    proc = subprocess.Popen([exe, "--cpu", str(cpus), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(HOG_WARMUP_S)
        if proc.poll() is not None:
            raise SystemExit(f"stress-ng exited at once (code {proc.returncode})")
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)  # stress-ng ends its workers on SIGTERM
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the session it leads, started above: only its own workers
            proc.wait(timeout=15)


def _runs_on(path: Path, backend: str) -> bool:
    """Whether every fault of the experiment can run on ``backend`` (node faults need a swarm)."""
    allowed = backends_for(load_experiment(path))
    return allowed is None or backend in allowed


def run_once(path: Path, backend: str, journal_dir: Path) -> tuple[str, str, dict]:
    experiment = load_experiment(path)
    result = Runner(experiment, path, RunOptions(backend=backend, journal_dir=journal_dir, progress=False)).run()
    verdict = result.verdict.value
    if result.as_declared is not None:
        verdict = "as declared" if result.as_declared else f"{verdict}, not as declared"
    return verdict, result.reason, read(result.journal) | {"_path": str(result.journal)}


def outcome(name: str, backend: str, cell: str, n: int, verdict: str, reason: str, journal: dict, took: float) -> Outcome:
    audit = journal.get("relaunches")
    return Outcome(
        experiment=name, backend=backend, cell=cell, run=n, verdict=verdict, reason=reason,
        recovery=dict(journal.get("recovery_times") or {}), back_during=dict(journal.get("back_during") or {}),
        not_disturbed=list(journal.get("not_disturbed") or []),
        unexpected_relaunches=journal.get("unexpected_relaunches"),
        relaunches=len(audit) if isinstance(audit, list) else None,
        load=round(os.getloadavg()[0], 2), seconds=round(took, 1), journal=journal["_path"],
    )


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def table(cells: dict[tuple[str, str, str], Cell]) -> list[str]:
    lines = ["| experiment | backend | cell | runs | verdicts | recovery s, median (range) | not disturbed | "
             "relaunches (all) | unexpected relaunches | load 1m |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (name, backend, cell_name), cell in sorted(cells.items()):
        outs = cell.outcomes
        verdicts = cell.verdicts()
        verdict_text = ", ".join(f"{v} {c}" for v, c in verdicts.most_common()) + ("" if len(verdicts) == 1 else " **(differ)**")
        checks = sorted({k for o in outs for k in o.recovery})

        def figure(o: Outcome, k: str) -> float:  # back during its fault: the time from the injection, not 0 s
            return o.back_during.get(k, o.recovery[k])

        def during(k: str) -> str:
            n = sum(k in o.back_during for o in outs)
            return "" if n == 0 else f" (during the fault in {n}, from its start)"

        recovery = "; ".join(f"{k} {spread([figure(o, k) for o in outs if k in o.recovery])}{during(k)}"
                             + ("" if all(k in o.recovery for o in outs) else f" [{sum(k in o.recovery for o in outs)}/{len(outs)}]")
                             for k in checks) or "-"
        undisturbed = Counter(k for o in outs for k in o.not_disturbed)
        undisturbed_text = ", ".join(f"{k} {c}/{len(outs)}" for k, c in sorted(undisturbed.items())) or "-"
        known = [o.unexpected_relaunches for o in outs if o.unexpected_relaunches is not None]
        unexpected = (f"{sum(known)} in {sum(1 for x in known if x)} runs" if known else "not known") + (
            "" if len(known) == len(outs) else f" ({len(outs) - len(known)} runs not known)")
        counted = [o.relaunches for o in outs if o.relaunches is not None]
        relaunches = f"{sum(counted)} in {sum(1 for x in counted if x)} runs" if counted else "not known"
        loads = [o.load for o in outs]
        lines.append(f"| {name} | {backend} | {cell_name} | {len(outs)} | {verdict_text} | {recovery} | {undisturbed_text} | "
                     f"{relaunches} | {unexpected} | {spread(loads)} |")
    for (name, backend, cell_name), cell in sorted(cells.items()):
        if name not in SLOWDOWNS:
            continue
        slow, ref = SLOWDOWNS[name]
        pairs = [(o.recovery[slow], o.recovery[ref]) for o in cell.outcomes if slow in o.recovery and ref in o.recovery]
        shown = ", ".join(f"{s:.2f}/{r:.2f}s ({s / r:.1f}x)" for s, r in pairs) if pairs else "no run measured both"
        lines.append(f"{name} {backend} {cell_name}: {slow} vs {ref} per run: {shown}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "docker", "both"], default="local")
    parser.add_argument("--runs", type=int, default=None, help="runs per experiment and cell (default: local 10, docker 5)")
    parser.add_argument("--cells", default="alone,hog", help="alone, hog or both (comma-separated)")
    parser.add_argument("--experiments", default="", help="file stems, comma-separated (default: every shipped experiment)")
    parser.add_argument("--hog-cpus", type=int, default=HOG_CPUS)
    parser.add_argument("--journal-dir", type=Path, default=None, help="default: journals/stability-<time>")
    parser.add_argument("--json", type=Path, default=None, help="also write every outcome as JSON")
    args = parser.parse_args()
    shipped = sorted((ROOT / "experiments").glob("*.yaml"))
    wanted = [x for x in args.experiments.split(",") if x]
    paths = [p for p in shipped if not wanted or p.stem in wanted]
    if wanted and len(paths) != len(wanted):
        raise SystemExit(f"unknown experiment among {wanted}; shipped: {', '.join(p.stem for p in shipped)}")
    backends = ["local", "docker"] if args.backend == "both" else [args.backend]
    cell_names = [c.strip() for c in args.cells.split(",") if c.strip()]
    journal_dir = args.journal_dir or ROOT / "journals" / time.strftime("stability-%Y%m%d-%H%M%S")
    journal_dir.mkdir(parents=True, exist_ok=True)
    cells: dict[tuple[str, str, str], Cell] = defaultdict(Cell)
    started = time.monotonic()
    for backend in backends:
        runs = args.runs or DEFAULT_RUNS[backend]
        runnable = [p for p in paths if _runs_on(p, backend)]
        skipped = sorted(p.stem for p in paths if p not in runnable)
        if skipped:
            print(f"{backend}: not run, their faults need another backend: {', '.join(skipped)}", flush=True)
        for cell_name in cell_names:
            hog = cpu_hog(args.hog_cpus) if cell_name == "hog" else contextlib.nullcontext()
            with hog:
                for n in range(1, runs + 1):
                    for path in runnable:
                        began = time.monotonic()
                        verdict, reason, journal = run_once(path, backend, journal_dir)
                        got = outcome(path.stem, backend, cell_name, n, verdict, reason, journal, time.monotonic() - began)
                        cells[(path.stem, backend, cell_name)].outcomes.append(got)
                        print(f"[{time.monotonic() - started:7.0f}s] {backend} {cell_name} run {n}/{runs} {path.stem}: "
                              f"{verdict} (load {got.load}, unexpected relaunches {got.unexpected_relaunches}, "
                              f"{got.seconds}s)" + ("" if verdict in ("passed", "as declared") else f" - {reason}"),
                              flush=True)
    print()
    print("\n".join(table(cells)))
    print(f"\njournals: {journal_dir}")
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for c in cells.values() for o in c.outcomes], indent=1))


if __name__ == "__main__":
    main()
