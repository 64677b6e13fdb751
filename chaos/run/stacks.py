"""Open the stack an experiment runs on: bring one up (torn down after) or attach (left up)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from chaos.experiment.stackcheck import check_against_stack, stack_file
from chaos.experiment.validate import ExperimentInvalid

if TYPE_CHECKING:
    from chaos.run.runner import Runner


def _sweep_leftovers(runner: Runner) -> None:
    """Remove the containers and networks that runs killed with SIGKILL left behind (dead owners only)."""
    from chaos.clean import clean
    from chaos.engine import connect
    from chaos.run import events as ev

    try:
        client = connect(timeout=30)
        report = clean(client)
        client.close()
    except Exception as err:  # noqa: BLE001 - a failed sweep must not stop this run
        runner.emit(ev.Note(message=f"could not sweep leftovers of killed runs: {err}"))
        return
    if report.removed:
        runs = sorted({r.run_id for r in report.removed})
        runner.emit(ev.Note(message=f"removed {len(report.removed)} leftover resource(s) of killed run(s) {', '.join(runs)}"))


@contextlib.contextmanager
def _brought_up(runner: Runner) -> Iterator[Any]:
    from chaos.stack import start_stack

    exp = runner.experiment
    path = stack_file(exp.stack, runner.file.parent)
    backend = runner.options.backend or (runner.backend if runner.backend != "auto" else None)
    if backend is None:
        from chaos.stack import default_backend

        backend = default_backend()
    from chaos.stack import load_stack

    problems = check_against_stack(exp, load_stack(path).spec, None, backend)
    if problems:  # e.g. squeeze on local processes: say so before starting anything
        raise ExperimentInvalid(problems)
    if backend == "docker":
        _sweep_leftovers(runner)
    stack = start_stack(path, backend=backend, scale=exp.scale, profile=exp.profile, env=exp.env or None,
                        identity=runner.identity, checkpoint=runner.checkpoint)
    try:
        yield stack
    finally:
        stack.down()


@contextlib.contextmanager
def _attached(runner: Runner) -> Iterator[Any]:
    """A stack someone else brought up, renewed for this experiment and verified; left up after."""
    from chaos.authoring.reset import reset
    from chaos.run import events as ev
    from chaos.stack import attach

    exp = runner.experiment
    with attach(runner.options.attach) as stack:
        # The rule for an experiment whose scale, profile or env differ from the
        # stack's: the stack is changed to match (renewed with the experiment's).
        done = reset(stack, scale=exp.scale, profile=exp.profile, env=exp.env or None, checkpoint=runner.checkpoint)
        runner.reset_lines = [f"renewed attached stack {stack.run_id}: {line}" for line in done]
        for line in runner.reset_lines:
            runner.emit(ev.Note(message=line))
        yield stack


@contextlib.contextmanager
def _attached_compose(runner: Runner, project: str) -> Iterator[Any]:
    """A Compose project someone started: used as found (no renewal), left running after; only faults rolled back."""
    from chaos.compose.attach import attach_project
    from chaos.experiment.stackcheck import ATTACHED_COMPOSE
    from chaos.run import events as ev

    exp = runner.experiment
    stack = attach_project(project, stack_file(exp.stack, runner.file.parent))
    problems = check_against_stack(exp, stack.spec, None, ATTACHED_COMPOSE)
    if problems:  # link faults, scale or env: refused before anything is done to the project
        raise ExperimentInvalid(problems)
    runner.reset_lines = [f"attached to Compose project {project} ({len(stack.plan.instances)} containers): "
                          "used as found, not renewed (roomquake did not start it)"]
    for line in runner.reset_lines:
        runner.emit(ev.Note(message=line))
    yield stack


def open_stack(runner: Runner) -> Any:
    if runner.options.attach:
        from chaos.compose.attach import project_of

        project = project_of(runner.options.attach)
        if project is not None:
            return _attached_compose(runner, project)
        return _attached(runner)
    return _brought_up(runner)
