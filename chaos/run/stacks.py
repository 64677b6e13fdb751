"""Open the stack an experiment runs on: bring one up (torn down after) or attach (left up).

An opener gets a ``StackRequest`` (what the run asks for and how it reports
back), never the runner itself, so that this module and chaos.run.runner do
not import each other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.experiment.stackcheck import check_against_stack, stack_file
from chaos.experiment.validate import ExperimentInvalid
from chaos.run import events as ev

if TYPE_CHECKING:
    from chaos.experiment.model import Experiment
    from chaos.labels import RunIdentity
    from chaos.stack.contract import LiveStack


@dataclass
class StackRequest:
    """What a run asks of its stack opener, and what the opener reports back (origin, reset lines)."""

    experiment: Experiment
    file: Path  # the experiment file (its folder anchors a relative stack file)
    backend: str | None  # docker | local | swarm; None: docker when an engine answers
    attach: str | None  # run id (or "latest") of a stack that is already up
    identity: RunIdentity
    checkpoint: Callable[[], None]  # raises on a noted Ctrl-C: called between bring-up steps
    emit: Callable[[ev.Event], ev.Event]
    origin: ev.StackOrigin = "brought_up"  # how the stack was obtained; a pool that had to start afresh corrects it
    reset_lines: list[str] = field(default_factory=list)  # what was done to a reused or attached stack (journaled)


# An opener: a context manager that yields the running stack and leaves it as its owner says (down, or up).
StackOpener = Callable[[StackRequest], AbstractContextManager["LiveStack"]]


def _sweep_leftovers(request: StackRequest) -> None:
    """Remove the containers and networks that runs killed with SIGKILL left behind (dead owners only)."""
    from chaos.clean import clean
    from chaos.engine import connect

    try:
        client = connect(timeout=30)
        report = clean(client)
        client.close()
    except Exception as err:  # noqa: BLE001 - a failed sweep must not stop this run
        request.emit(ev.Note(message=f"could not sweep leftovers of killed runs: {err}"))
        return
    if report.removed:
        runs = sorted({r.run_id for r in report.removed})
        request.emit(ev.Note(message=f"removed {len(report.removed)} leftover resource(s) of killed run(s) {', '.join(runs)}"))


@contextlib.contextmanager
def _brought_up(request: StackRequest) -> Iterator[LiveStack]:
    from chaos.stack import default_backend, load_stack, start_stack

    exp = request.experiment
    path = stack_file(exp.stack, request.file.parent)
    backend = request.backend or default_backend()
    problems = check_against_stack(exp, load_stack(path).spec, None, backend)
    if problems:  # e.g. squeeze on local processes: say so before starting anything
        raise ExperimentInvalid(problems)
    if backend == "docker":
        _sweep_leftovers(request)
    stack = start_stack(path, backend=backend, scale=exp.scale, profile=exp.profile, env=exp.env or None,
                        identity=request.identity, checkpoint=request.checkpoint)
    try:
        yield stack
    finally:
        stack.down()


@contextlib.contextmanager
def _attached(request: StackRequest, run_id: str) -> Iterator[LiveStack]:
    """A stack someone else brought up, renewed for this experiment and verified; left up after."""
    from chaos.authoring.reset import reset
    from chaos.stack import attach

    exp = request.experiment
    with attach(run_id) as stack:
        # The rule for an experiment whose scale, profile or env differ from the
        # stack's: the stack is changed to match (renewed with the experiment's).
        done = reset(stack, scale=exp.scale, profile=exp.profile, env=exp.env or None, checkpoint=request.checkpoint)
        request.reset_lines = [f"renewed attached stack {stack.run_id}: {line}" for line in done]
        for line in request.reset_lines:
            request.emit(ev.Note(message=line))
        yield stack


@contextlib.contextmanager
def _attached_compose(request: StackRequest, project: str) -> Iterator[LiveStack]:
    """A Compose project someone started: used as found (no renewal), left running after; only faults rolled back."""
    from chaos.compose.attach import attach_project
    from chaos.experiment.stackcheck import ATTACHED_COMPOSE

    exp = request.experiment
    stack = attach_project(project, stack_file(exp.stack, request.file.parent))
    problems = check_against_stack(exp, stack.spec, None, ATTACHED_COMPOSE)
    if problems:  # link faults, scale or env: refused before anything is done to the project
        raise ExperimentInvalid(problems)
    request.reset_lines = [f"attached to Compose project {project} ({len(stack.plan.instances)} containers): "
                           "used as found, not renewed (roomquake did not start it)"]
    for line in request.reset_lines:
        request.emit(ev.Note(message=line))
    yield stack


def open_stack(request: StackRequest) -> AbstractContextManager[LiveStack]:
    if request.attach:
        from chaos.compose.attach import project_of

        project = project_of(request.attach)
        if project is not None:
            return _attached_compose(request, project)
        return _attached(request, request.attach)
    return _brought_up(request)
