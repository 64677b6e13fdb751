"""Check an experiment against the stack it names, before anything starts.

The model alone cannot know that ``crowd.conected_ratio`` is not a probe of
this stack, that ``edge->control`` is not one of its links, or that
``edge-5`` does not exist at ``scale: {edge: 3}``. These checks use the
stack file and report, like the model's, one located line per problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from chaos.errors import RoomquakeError
from chaos.experiment import model as m
from chaos.experiment.validate import validate_document
from chaos.faults import kind_of
from chaos.faults.base import StackFacts
from chaos.problems import Problem, field_name, suggest
from chaos.yamldoc import Document, PathKey, SyntaxProblem, read_document

def stack_file(name: str, experiment_dir: Path) -> Path:
    """``stack:`` is a path (relative to the experiment file, then the cwd) or a stack name (chaos.stack.find)."""
    from chaos.stack.find import find_stack

    return find_stack(name, experiment_dir)


def validate_with_stack(path: str | Path, backend: str | None = None) -> tuple[m.Experiment | None, list[Problem]]:
    """Every problem of an experiment file: its own (model, cross-references), then against its stack."""
    try:
        doc = read_document(path, "experiment file")
    except SyntaxProblem as err:
        return None, [Problem(err.line, err.col, str(path), "file", err.message)]
    return check_document(doc, backend)


def check_document(doc: Document, backend: str | None = None) -> tuple[m.Experiment | None, list[Problem]]:
    """validate_with_stack of a document already read (chaos.yamldoc.read_document)."""
    experiment, problems = validate_document(doc)
    if experiment is None:
        return None, problems
    try:
        from chaos.stack import load_stack

        spec = load_stack(stack_file(experiment.stack, Path(doc.path).parent)).spec
    except RoomquakeError as err:
        line, col = doc.positions.of_value(("stack",))
        return None, [Problem(line, col, doc.path, "stack", err.one_line())]
    problems = sorted(check_against_stack(experiment, spec, doc, backend))
    return (experiment if not problems else None), problems


def _names(spec: Any, scale: dict[str, int]) -> dict[str, list[str]]:
    """Instance names per service at the experiment's scale."""
    out = {}
    for service, svc in spec.services.items():
        count = scale.get(service, svc.replicas)
        out[service] = [f"{service}-{n}" for n in range(1, count + 1)]
    return out


def _step_paths(method: list[Any]) -> Iterable[tuple[PathKey, Any]]:
    for i, step in enumerate(method):
        if isinstance(step, m.ParallelStep):
            for j, sub in enumerate(step.parallel):
                yield ("method", i, "parallel", j), sub
        else:
            yield ("method", i), step


# ``backend`` for ``run --attach compose:PROJECT``: Docker containers that roomquake did not start, no proxy on their links.
ATTACHED_COMPOSE = "compose"
COMPOSE_LINK_HINT = ("a running Compose project has no fault proxy on its connections: import it "
                     "(roomquake stack import docker-compose.yml -o stack.yaml) and run the experiment on that")


def check_against_stack(experiment: m.Experiment, spec: Any, doc: Document | None = None,
                        backend: str | None = None) -> list[Problem]:
    problems: list[Problem] = []
    file = doc.path if doc else "<experiment>"

    def at(path: PathKey, message: str) -> None:
        line, col = doc.positions.of_value(path) if doc else (0, 0)
        problems.append(Problem(line, col, file, field_name(path), message))

    services = set(spec.services)

    def service(path: PathKey, name: str | None) -> None:
        if name is not None and name not in services:
            at(path, f"no service {name!r} in stack {spec.name}; {suggest(name, services)}")

    def probe(path: PathKey, ref: Any) -> None:
        if isinstance(ref, str) and ref not in spec.probes:
            at(path, f"no probe {ref!r} in stack {spec.name}; {suggest(ref, spec.probes)}")

    for name in experiment.scale:
        service(("scale", name), name)
    for name in experiment.env:
        service(("env", name), name)
    for section in ("steady_state", "recovery", "abort_if"):
        for i, check in enumerate(getattr(experiment, section)):
            probe((section, i, "probe"), check.probe)
    for i, ref in enumerate(experiment.observe):
        probe(("observe", i), ref)
    if experiment.history is not None and getattr(getattr(spec, "history", None), "listeners", None) is None:
        at(("history",), f"stack {spec.name} declares no history.listeners source: nothing to check listeners' histories on")
    if experiment.load is not None and "start" not in spec.load:
        at(("load",), f"stack {spec.name} declares no load action 'start'")

    attached_compose = backend == ATTACHED_COMPOSE
    if attached_compose:
        backend = "docker"  # its instances are containers
        for key in ("scale", "env"):
            if getattr(experiment, key):
                at((key,), f"an attached Compose project runs as it is: roomquake does not change its {key} "
                           "(docker-compose up does, or run the imported stack file)")
    facts = StackFacts(spec, _names(spec, experiment.scale), backend)
    for path, step in _step_paths(experiment.method):
        if isinstance(step, m.CheckStep):
            probe((*path, "probe"), step.probe)
            continue
        if not isinstance(step, m.FaultBase):
            continue  # a wait
        handler = kind_of(step).handler
        if attached_compose and isinstance(step, m.LinkFault):
            at((*path, "link"), f"{step.fault} on {step.link}: {COMPOSE_LINK_HINT}")
            continue
        for where, message in handler.check(step, facts):
            at((*path, *where), message)
        if backend is not None and handler.backends is not None and backend not in handler.backends:
            at((*path, "fault"), f"{step.fault} needs {handler.needs}: run with --backend {' or '.join(sorted(handler.backends))}")
    return problems


def backends_for(experiment: m.Experiment) -> frozenset[str] | None:
    """The backends every fault of the experiment can run on (None: any backend); swarm-only experiments say so."""
    allowed: frozenset[str] | None = None
    for _, step in _step_paths(experiment.method):
        if isinstance(step, m.FaultBase):
            backends = kind_of(step).handler.backends
            if backends is not None:
                allowed = backends if allowed is None else allowed & backends
    return allowed
