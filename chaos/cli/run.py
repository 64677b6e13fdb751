"""``roomquake run FILE...``: run experiments and print their timeline and verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from chaos.cli.checking import check_all, refuse_if_invalid


@click.command(name="run")
@click.argument("files", nargs=-1, required=True)
@click.option("--backend", type=click.Choice(["docker", "local", "swarm"]), help="Default: docker when an engine answers, else local.")
@click.option("--attach", "attach", metavar="RUN_ID|compose:PROJECT",
              help="Run against a stack already up (roomquake stack up), or a running Compose project; leave it up.")
@click.option("--seed", type=int, help="Seed for every random choice (default: the file's, else drawn and recorded).")
@click.option("--journal-dir", type=click.Path(file_okay=False), help="Where journals go (default: ./journals).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON on stdout (no progress display).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display, only the verdict lines.")
@click.option("--report", is_flag=True, help="Also write each run's HTML report beside its journal (samples the key probes for its chart).")
def command(files: tuple[str, ...], backend: str | None, attach: str | None, seed: int | None,
            journal_dir: str | None, as_json: bool, quiet: bool, report: bool) -> None:
    """Run experiment FILES; exit 0 passed, 1 deviated, 3 aborted, 4 errored (2: invalid file).

    Every file is validated first; nothing runs if any is invalid.

    \b
    Examples:
      roomquake run experiments/edge-loss.yaml
      roomquake run --backend local experiments/*.yaml
      roomquake run --report experiments/edge-loss.yaml
    """
    if backend is None and attach is None:
        from chaos.stack import default_backend

        backend = default_backend()  # chosen before validation, so what it cannot do is refused too (exit 2)
    checked_for = backend
    if attach is not None and attach.startswith("compose:"):
        from chaos.experiment.stackcheck import ATTACHED_COMPOSE

        checked_for = ATTACHED_COMPOSE  # containers without link proxies: link faults refused (exit 2)
    checked = check_all(files, checked_for)
    refuse_if_invalid(checked)  # exit 2, nothing started
    experiments = [(c.path, c.experiment) for c in checked]
    from chaos.run import RunOptions, Runner
    from chaos.run.progress import recovery_text
    from chaos.signals import INTERRUPTS

    results: list[dict[str, Any]] = []
    worst = 0
    for n, (path, experiment) in enumerate(experiments):
        assert experiment is not None
        if INTERRUPTS.received and results:
            # One Ctrl-C ends the whole command: the interrupted run rolled back, nothing else starts.
            skipped = [p for p, _ in experiments[n:]]
            click.echo(f"interrupted by {INTERRUPTS.first}: not run: {', '.join(skipped)}", err=True)
            break
        if report:
            from chaos.report.keyprobes import with_key_probes

            experiment = with_key_probes(experiment, path)
        runner = Runner(experiment, path, RunOptions(
            backend=backend, attach=attach, seed=seed, progress=not (as_json or quiet),
            journal_dir=Path(journal_dir) if journal_dir else None,
        ))
        result = runner.run()
        worst = max(worst, result.exit_code)
        results.append({
            "file": path, "run_id": result.run_id, "verdict": result.verdict.value, "reason": result.reason,
            "exit_code": result.exit_code, "as_declared": result.as_declared, "seed": result.seed,
            "journal": str(result.journal),
            "recovery_times": {r.check: r.recovery_s for r in result.results if r.recovery_s is not None},
            "back_during": {r.check: r.back_during_s for r in result.results if r.back_during_s is not None},
            "not_disturbed": [r.check for r in result.results if r.outcome == "not_disturbed"],
            "unexpected_relaunches": _unexpected_relaunches(result.journal),
            "failed": [r.message for r in result.results if not r.ok],
        })
        if report:
            from chaos.report import write_report

            results[-1]["report"] = str(write_report(result.journal))
        if not as_json:
            declared = ""
            if result.as_declared is not None:
                declared = " (known weakness, as declared)" if result.as_declared else " (NOT as declared)"
            click.echo(f"{path}: {result.verdict.value.upper()}{declared} - {result.reason}")
            anchors = {r.check: r.anchor for r in result.results}
            for name, seconds in results[-1]["recovery_times"].items():
                back = results[-1]["back_during"].get(name)
                click.echo(f"  recovered: {name} " + (f"in {seconds:.2f}s" if back is None else
                                                       recovery_text(seconds, back, anchors.get(name))))
            for name in results[-1]["not_disturbed"]:
                click.echo(f"  not disturbed: {name} (no recovery time)")
            if results[-1]["unexpected_relaunches"]:
                click.echo(f"  unexpected relaunches: {results[-1]['unexpected_relaunches']} (no fault active when their failure began)")
            click.echo(f"  journal: {result.journal}")
            if report:
                click.echo(f"  report: {results[-1]['report']}")
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
    if INTERRUPTS.received:
        worst = 3  # aborted by a signal, whatever the runs before it did
    sys.exit(worst)


def _unexpected_relaunches(journal: Path) -> int | None:
    """Relaunches no injected fault explains, from the run's journal (None: not known)."""
    try:
        found = json.loads(Path(journal).read_text(encoding="utf-8")).get("unexpected_relaunches")
        return found if isinstance(found, int) else None
    except (OSError, ValueError):
        return None
