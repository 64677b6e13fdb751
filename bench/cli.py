"""How fast the command line answers, against ``python -c pass`` in the same run.

Each round runs, one after the other: ``python -c pass`` (the interpreter's
own start-up, the floor), ``roomquake --help``, ``roomquake validate`` of one
shipped experiment, and ``roomquake run --backend local`` of one shipped
experiment up to the moment its bring-up starts (the run's first progress
line, printed just before the stack is started; the run is then interrupted
and rolls back). Each command gets two figures, median and spread (min-max)
over the rounds: its wall time, and its CPU time (user + system of the
process; for the run, up to its first line, from /proc). On a quiet machine
the two are close; on a shared one the wall time also holds the time spent
waiting for a core, and the CPU time says what the command itself costs.

``--hostile`` also times validate of every file in fixtures/hostile (each
refused, exit 2) and of three generated files at the reader's limits: 128 KiB
of method steps and 10,000 keys and values (both valid, exit 0), and a file just over
the size limit (refused unread, exit 2).

Commands run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed from
their environment), as a user's installation has it; a warm-up round writes
the .pyc files.

    .venv/bin/python bench/cli.py --runs 7
    .venv/bin/python bench/cli.py --runs 5 --hostile --no-run
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROOMQUAKE = str(BIN / "roomquake")
SHIPPED = str(ROOT / "experiments" / "edge-loss.yaml")
RUN_FILE = str(ROOT / "experiments" / "baseline.yaml")
TARGETS = {"--help": 0.15, "validate": 0.35, "run to bring-up": 0.5}
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
TICK = os.sysconf("SC_CLK_TCK")

Sample = tuple[float, float]  # wall seconds, CPU seconds


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], expect: int = 0) -> Sample:
    cpu, began = children_cpu(), time.perf_counter()
    code = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                          env=ENV).returncode
    took = time.perf_counter() - began
    if code != expect:
        raise SystemExit(f"{' '.join(argv)}: exit {code}, expected {expect}")
    return took, children_cpu() - cpu


def process_cpu(pid: int) -> float:
    """User + system seconds a live process has used so far (/proc/PID/stat fields 14 and 15)."""
    from chaos.labels import proc_stat  # the harness's own import: the measured process is a child

    fields = proc_stat(pid)
    if not fields:
        raise SystemExit(f"bench: process {pid} is gone before its CPU time was read")
    return (int(fields[11]) + int(fields[12])) / TICK


def run_to_bring_up(journals: Path) -> Sample:
    """From starting ``roomquake run`` to its first progress line (the bring-up starts next)."""
    began = time.perf_counter()
    proc = subprocess.Popen([ROOMQUAKE, "run", "--backend", "local", "--journal-dir", str(journals), RUN_FILE],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=ENV)
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        took = time.perf_counter() - began
        cpu = process_cpu(proc.pid)
        if " run " not in line:
            raise SystemExit(f"roomquake run: unexpected first line {line!r}")
        return took, cpu
    finally:
        proc.send_signal(signal.SIGINT)  # the run rolls back and tears down what it started
        for _ in proc.stderr:
            pass
        proc.wait(timeout=120)


def limit_files(folder: Path) -> dict[str, tuple[Path, int]]:
    """Generated experiments at the reader's limits (chaos.yamldoc) -> (file, expected exit code)."""
    from chaos import yamldoc

    head = "title: at the limits\nstack: audio-room\nmethod:\n"
    wide = "  - {id: k%d, at: 1s, fault: kill, target: {service: edge}, description: " + "x" * 160 + "}\n"
    dense = "  - {id: k%d, at: 1s, fault: kill, target: {service: edge, hosting: launch}}\n"
    n_wide = (yamldoc.MAX_BYTES - len(head)) // len(wide % 9999)
    n_dense = (yamldoc.MAX_NODES - 10) // 13  # 13 keys and values per step
    files = {
        f"limit {yamldoc.MAX_BYTES // 1024} KiB ({n_wide} steps)": (head + "".join(wide % i for i in range(n_wide)), 0),
        f"limit {yamldoc.MAX_NODES} keys+values ({n_dense} steps)": (head + "".join(dense % i for i in range(n_dense)), 0),
        "over the size limit": (head + "".join(wide % i for i in range(n_wide + 20)), 2),
    }
    out = {}
    for i, (name, (text, code)) in enumerate(files.items()):
        path = folder / f"limit-{i}.yaml"
        path.write_text(text)
        out[name] = (path, code)
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"


def row(name: str, samples: list[Sample], floor: Sample) -> str:
    walls, cpus = [w for w, _ in samples], [c for _, c in samples]
    line = f"{name:<36} wall {spread(walls)}  cpu {spread(cpus)}"
    target = TARGETS.get(name)
    if target is not None:
        over = statistics.median(walls) - floor[0]
        line += f"  +{over:.3f} s over python; target {target:.2f} s: {'met' if statistics.median(walls) <= target else 'missed'}"
    elif name.startswith(("hostile", "limit", "over")):
        line += "  within 1 s" if max(walls) <= 1 else "  OVER 1 s"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--hostile", action="store_true", help="also validate fixtures/hostile and files at the limits")
    parser.add_argument("--no-run", action="store_true", help="skip the run measurement (it starts local processes)")
    args = parser.parse_args()
    measures: dict[str, Callable[[], Sample]] = {
        "python -c pass": lambda: timed([sys.executable, "-c", "pass"]),
        "--help": lambda: timed([ROOMQUAKE, "--help"]),
        "validate": lambda: timed([ROOMQUAKE, "validate", SHIPPED]),
    }
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        if not args.no_run:
            measures["run to bring-up"] = lambda: run_to_bring_up(Path(tmp))
        if args.hostile:
            for path in sorted((ROOT / "fixtures" / "hostile").glob("*")):
                if path.suffix in (".yaml", ".yml", ".json"):
                    measures[f"hostile {path.name}"] = lambda p=path: timed([ROOMQUAKE, "validate", str(p)], expect=2)
            for name, (path, code) in limit_files(Path(tmp)).items():
                measures[name] = lambda p=path, c=code: timed([ROOMQUAKE, "validate", str(p)], expect=c)
        results: dict[str, list[Sample]] = {name: [] for name in measures}
        for measure in measures.values():  # warm-up: page cache, .pyc files
            measure()
        loads = [os.getloadavg()[0]]
        for _ in range(args.runs):
            for name, measure in measures.items():
                results[name].append(measure())
            loads.append(os.getloadavg()[0])
    print(f"roomquake CLI, {args.runs} rounds, load average {min(loads):.1f}-{max(loads):.1f}, {sys.executable}")
    floor = (statistics.median(w for w, _ in results["python -c pass"]), 0.0)
    for name, samples in results.items():
        print(row(name, samples, floor))


if __name__ == "__main__":
    main()
