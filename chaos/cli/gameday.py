"""``roomquake gameday FILE``: run an experiment live, step by step, with notes and a halt."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command(name="gameday")
@click.argument("file")
@click.option("--backend", type=click.Choice(["docker", "local", "swarm"]), help="Bring the stack up on this backend (default: docker when an engine answers).")
@click.option("--attach", metavar="RUN_ID|compose:PROJECT",
              help="Drive a stack already up (roomquake stack up; 'latest' for the newest) or a running Compose project; "
                   "it stays up.")
@click.option("--auto", is_flag=True, help="Run the steps on their timeline without waiting for Enter.")
@click.option("--profile", help="Timing profile of the stack file (e.g. gameday: real-world timings).")
@click.option("--seed", type=int, help="Seed for every random choice.")
@click.option("--journal-dir", type=click.Path(file_okay=False), help="Where the journal goes (default: ./journals).")
@click.option("-o", "--report", "report", type=click.Path(dir_okay=False), help="HTML report path (default: beside the journal).")
def command(file: str, backend: str | None, attach: str | None, auto: bool, profile: str | None, seed: int | None,
            journal_dir: str | None, report: str | None) -> None:
    """Run the experiment in FILE as a game day and end with its HTML report.

    Shows the plan, then waits for you before each fault: Enter runs the
    next step, typing writes a note into the journal (with its time), h or
    Ctrl-C halts and rolls back every fault at once. The method's clock is
    paused while it waits for you. On a terminal a live dashboard shows the
    key probes; otherwise plain lines (one per event, probes every 2 s).
    Exit code as for run: 0 passed, 1 deviated, 3 aborted or halted, 4 errored.

    \b
    Examples:
      roomquake gameday experiments/edge-loss.yaml --backend local
      roomquake stack up --profile gameday && roomquake gameday --attach latest experiments/host-loss.yaml
      roomquake gameday --auto experiments/no-flap.yaml
    """
    from chaos.cli.checking import check, refuse_if_invalid

    refuse_if_invalid([check(file, backend)], f" in {file}")
    from chaos.gameday import run_gameday

    result = run_gameday(file, backend=backend, attach=attach, auto=auto, profile=profile, seed=seed,
                         journal_dir=Path(journal_dir) if journal_dir else None, report=Path(report) if report else None)
    sys.exit(result.run.exit_code)
