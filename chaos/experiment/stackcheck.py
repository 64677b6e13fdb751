"""Check an experiment against the stack it names, before anything starts.

The model alone cannot know that ``crowd.conected_ratio`` is not a probe of
this stack, that ``edge->control`` is not one of its links, or that
``edge-5`` does not exist at ``scale: {edge: 3}``. These checks use the
stack file and report, like the model's, one located line per problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from chaos.errors import RoomquakeError, UsageError
from chaos.experiment import model as m
from chaos.experiment.loader import Document, PathKey, SyntaxProblem, read_document
from chaos.experiment.validate import ExperimentInvalid, Problem, field_name, suggest, validate_document

# Where a stack named in an experiment (``stack: audio-room``) is looked for.
REPO_ROOT = Path(__file__).resolve().parents[2]


def stack_file(name: str, experiment_dir: Path) -> Path:
    """``stack:`` is a path (relative to the experiment file, then the cwd) or a stack name."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        for base in (experiment_dir, Path.cwd()):
            if (base / name).is_file():
                return base / name
        raise UsageError(f"stack file {name!r} not found (looked next to the experiment and in the current folder)")
    from chaos.stack import load_stack

    seen = []
    for candidate in (Path.cwd() / "docker" / "stack.yaml", experiment_dir.parent / "docker" / "stack.yaml",
                      REPO_ROOT / "docker" / "stack.yaml"):
        if candidate.is_file() and candidate.resolve() not in seen:
            seen.append(candidate.resolve())
            if load_stack(candidate).name == name:
                return candidate
    raise UsageError(f"no stack named {name!r}; give a path to its stack file, e.g. stack: docker/stack.yaml")


def validate_with_stack(path: str | Path, backend: str | None = None) -> tuple[m.Experiment | None, list[Problem]]:
    """Every problem of an experiment file: its own (model, cross-references), then against its stack."""
    try:
        doc = read_document(path)
    except SyntaxProblem as err:
        return None, [Problem(err.line, err.col, str(path), "file", err.message)]
    experiment, problems = validate_document(doc)
    if experiment is None:
        return None, problems
    try:
        from chaos.stack import load_stack

        spec = load_stack(stack_file(experiment.stack, Path(path).parent)).spec
    except RoomquakeError as err:
        line, col = doc.positions.of_value(("stack",))
        return None, [Problem(line, col, str(path), "stack", err.one_line())]
    problems = sorted(check_against_stack(experiment, spec, doc, backend))
    return (experiment if not problems else None), problems


def load_checked(path: str | Path, backend: str | None = None) -> m.Experiment:
    experiment, problems = validate_with_stack(path, backend)
    if problems or experiment is None:
        raise ExperimentInvalid(problems)
    return experiment


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


def check_against_stack(experiment: m.Experiment, spec: Any, doc: Document | None = None,
                        backend: str | None = None) -> list[Problem]:
    problems: list[Problem] = []
    file = doc.path if doc else "<experiment>"

    def at(path: PathKey, message: str) -> None:
        line, col = doc.positions.of_value(path) if doc else (0, 0)
        problems.append(Problem(line, col, file, field_name(path), message))

    services = set(spec.services)
    instances = _names(spec, experiment.scale)
    every_instance = {n for names in instances.values() for n in names}
    links = set(spec.links) if hasattr(spec, "links") else set()
    link_pairs = {tuple(x.replace(" ", "").split("->")) for x in links}

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

    for path, step in _step_paths(experiment.method):
        if isinstance(step, m.CheckStep):
            probe((*path, "probe"), step.probe)
            continue
        target = getattr(step, "target", None)
        if isinstance(target, m.Target):
            tpath = (*path, "target")
            service((*tpath, "service"), target.service)
            if target.instance and target.instance not in every_instance:
                at((*tpath, "instance"), f"no instance {target.instance!r} at this scale; {suggest(target.instance, every_instance)}")
            if target.replica and target.service in instances and target.replica > len(instances[target.service]):
                at((*tpath, "replica"), f"{target.service} has {len(instances[target.service])} replica(s) at this scale")
            if target.hosting is not None and "hosting" not in spec.selectors:
                at((*tpath, "hosting"), f"stack {spec.name} declares no selector 'hosting'")
            if target.select is not None and target.select.get("name") not in spec.selectors:
                name = str(target.select.get("name"))
                at((*tpath, "select", "name"), f"no selector {name!r} in stack {spec.name}; {suggest(name, spec.selectors) if spec.selectors else 'it declares none'}")
        if isinstance(step, m.LinkFault):
            client, _, server = step.link.partition("->")
            if (client, server) not in link_pairs:
                base = server.rsplit("-", 1)[0]
                if not ((client, base) in link_pairs and server in instances.get(base, [])):
                    known = sorted(links)
                    at((*path, "link"), f"no link {step.link!r} in stack {spec.name}; {suggest(step.link, known)}")
        if isinstance(step, m.StaffReductionFault):
            service((*path, "group"), step.group)
        if isinstance(step, (m.SurgeFault, m.DrainFault)) and step.fault not in spec.load:
            at((*path, "fault"), f"stack {spec.name} declares no load action {step.fault!r}")
        if backend == "local" and isinstance(step, (m.DisconnectFault, m.SqueezeFault)):
            at((*path, "fault"), f"{step.fault} needs containers: run with --backend docker")
    return problems
