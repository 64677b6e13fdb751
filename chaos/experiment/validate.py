"""Validate experiment files and report every problem at once, each on one line:

    experiments/edge-loss.yaml:14:5: method[1].latncy: unknown key; did you mean 'latency'?

Three passes over the same document, all of whose findings are kept: the YAML
parse (a syntax error stops there, nothing else can be trusted), the typed
model (pydantic, every error with its path), and cross-references between
parts of the file (ids used by ``after``, ``during``, ``known_weakness``).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from chaos.errors import UsageError
from chaos.experiment import model as m
from chaos.experiment.expect import hit_refs
from chaos.problems import Problem, Translator, field_name, plural, suggest
from chaos.yamldoc import Document, PathKey, SyntaxProblem, parse_text, read_document

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = ["ExperimentInvalid", "Problem", "field_name", "load_experiment", "suggest", "validate_document",
           "validate_file", "validate_text"]


class ExperimentInvalid(UsageError):
    """An experiment file has problems; ``problems`` holds every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        more = f" (and {plural(len(problems) - 1, 'more problem')})" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")
        self.problems = problems


# ------------------------------------------------------------- model errors -> problems


def _tags() -> dict[str, Any]:
    """The discriminator tags of method steps and faults (model.py), and the model each stands for."""
    tags: dict[str, Any] = {"step:fault": m.FaultStep, "step:check": m.CheckStep, "step:wait": m.WaitStep, "step:parallel": m.ParallelStep}
    tags.update({f"fault:{name}": cls for name, cls in m.FAULTS.items()})
    return tags


def _special(doc: Document, err: ErrorDetails, path: PathKey, field: str) -> Problem | None:
    """The experiment's own wording for unknown faults and steps without a kind."""
    kind, ctx = err["type"], err.get("ctx") or {}
    loc = tuple(err["loc"])
    if kind == "union_tag_invalid" and str(ctx.get("tag", "")).startswith("fault:"):
        given = str(ctx["tag"])[6:]
        line, col = doc.positions.of_value((*path, "fault"))
        return Problem(line, col, doc.path, f"{field}.fault", f"unknown fault '{given}'; {suggest(given, m.FAULTS)}")
    if kind == "union_tag_not_found":
        line, col = doc.positions.of_value(path)
        value = _get(doc.data, path)
        if isinstance(value, dict) and "fault" in value:
            return Problem(line, col, doc.path, f"{field}.fault", "fault must be a name, e.g. latency or kill")
        keys = ", ".join(m.STEP_KEYS) if loc and loc[-2:-1] != ("parallel",) else "fault, probe"
        return Problem(line, col, doc.path, field, f"a method step needs one of the keys {keys}")
    if kind == "string_pattern_mismatch":
        if loc[-1] == "link":
            message = f"'{err['input']}' is not a link; write client->server, e.g. edge->state"
        else:
            message = f"'{err['input']}' is not a valid name; use letters, digits, '.', '_' and '-'"
        line, col = doc.positions.of_value(path)
        return Problem(line, col, doc.path, field, message)
    return None


@functools.cache
def translator() -> Translator:
    return Translator(m.Experiment, _tags(), "experiment", _special)


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# ------------------------------------------------------------- cross-references


def _steps(data: dict[str, Any]) -> Iterable[tuple[PathKey, dict[str, Any]]]:
    method = data.get("method")
    for i, step in enumerate(method if isinstance(method, list) else []):
        if not isinstance(step, dict):
            continue
        yield ("method", i), step
        parallel = step.get("parallel")
        for j, sub in enumerate(parallel if isinstance(parallel, list) else []):
            if isinstance(sub, dict):
                yield ("method", i, "parallel", j), sub


def _checks(data: dict[str, Any]) -> Iterable[tuple[PathKey, dict[str, Any]]]:
    for path, step in _steps(data):
        if "probe" in step:
            yield path, step
    for section in ("steady_state", "recovery", "abort_if"):
        items = data.get(section)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                yield (section, i), item


def _cross_problems(doc: Document) -> list[Problem]:
    data = doc.data
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []

    def at(path: PathKey, message: str) -> None:
        line, col = doc.positions.of_value(path)
        problems.append(Problem(line, col, doc.path, field_name(path), message))

    seen: dict[str, PathKey] = {}
    fault_ids: set[str] = set()
    step_ids: set[str] = set()
    check_ids: set[str] = set()

    def register(path: PathKey, item: dict[str, Any], kind: str) -> None:
        ident = item.get("id")
        if not isinstance(ident, str):
            return
        if ident in seen:
            at((*path, "id"), f"id '{ident}' is already used at {field_name(seen[ident])}")
            return
        seen[ident] = path
        {"fault": fault_ids, "step": step_ids, "check": check_ids}[kind].add(ident)

    for path, step in _steps(data):
        if "fault" in step:
            register(path, step, "fault")
        elif "probe" in step:
            register(path, step, "check")
        else:
            register(path, step, "step")
    for section in ("steady_state", "recovery", "abort_if"):
        items = data.get(section)
        for i, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, dict):
                register((section, i), item, "check")

    history = data.get("history")
    if isinstance(history, dict):
        prefix = history.get("id") if isinstance(history.get("id"), str) else "history"
        check_ids.update(f"{prefix}.{key}" for key in m.HISTORY_ASSERTIONS if key in history)

    for path, step in _steps(data):
        during = step.get("during")
        if isinstance(during, str) and during not in fault_ids:
            at((*path, "during"), f"no fault step with id '{during}'; {suggest(during, fault_ids) if fault_ids else 'give the fault an id'}")
    every_step = fault_ids | step_ids
    recovery = data.get("recovery")
    for i, item in enumerate(recovery if isinstance(recovery, list) else []):
        after = item.get("after") if isinstance(item, dict) else None
        if isinstance(after, str) and after not in every_step:
            at(("recovery", i, "after"), f"no method step with id '{after}'; {suggest(after, every_step) if every_step else 'give the step an id'}")
    for path, item in _checks(data):
        for ref in hit_refs(json.dumps(item.get("expect"))):
            if ref not in fault_ids:
                known = suggest(ref, fault_ids) if fault_ids else "give the fault an id"
                at((*path, "expect"), f"{{{ref}.hit}} names no fault step; {known}")
    weakness = data.get("known_weakness")
    deviates = weakness.get("deviates") if isinstance(weakness, dict) else None
    for i, ident in enumerate(deviates if isinstance(deviates, list) else []):
        judged = check_ids - {k for k, p in seen.items() if p and p[0] == "abort_if"}
        if isinstance(ident, str) and ident not in judged:
            at(("known_weakness", "deviates", i), f"no assertion with id '{ident}'; {suggest(ident, judged) if judged else 'give the assertion an id'}")
    return problems


# ------------------------------------------------------------- entry points


def _drop_suggested_missing(problems: list[Problem]) -> list[Problem]:
    """``expct: live`` gives 'unknown key expct; did you mean expect?' and 'expect is missing':
    the second says nothing new, so keep only the first."""
    suggested = {
        p.field.rsplit(".", 1)[0] + "." + p.message.split("'")[1]
        for p in problems
        if p.message.startswith("unknown key; did you mean") and "." in p.field
    } | {
        p.message.split("'")[1]
        for p in problems
        if p.message.startswith("unknown key; did you mean") and "." not in p.field
    }
    return [p for p in problems if not (p.message == "required key is missing" and p.field in suggested)]



def validate_document(doc: Document) -> tuple[m.Experiment | None, list[Problem]]:
    from pydantic import ValidationError

    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else f"a {type(doc.data).__name__}"
        return None, [Problem(1, 1, doc.path, "experiment", f"an experiment file is a mapping with at least a title, not {what}")]
    problems: list[Problem] = []
    experiment = None
    try:
        experiment = m.Experiment.model_validate(doc.data)
    except ValidationError as err:
        problems.extend(translator().problems(doc, err.errors(include_url=False)))
    problems.extend(_cross_problems(doc))
    unique = sorted(set(_drop_suggested_missing(problems)))
    return (experiment if not unique else None), unique


def validate_text(text: str, path: str = "<string>") -> tuple[m.Experiment | None, list[Problem]]:
    try:
        return validate_document(parse_text(text, path))
    except SyntaxProblem as err:
        return None, [Problem(err.line, err.col, path, "file", err.message)]


def validate_file(path: str | Path) -> tuple[m.Experiment | None, list[Problem]]:
    try:
        doc = read_document(path, "experiment file")
    except SyntaxProblem as err:
        return None, [Problem(err.line, err.col, str(path), "file", err.message)]
    return validate_document(doc)


def load_experiment(path: str | Path) -> m.Experiment:
    """The typed experiment, or ExperimentInvalid carrying every problem."""
    experiment, problems = validate_file(path)
    if problems or experiment is None:
        raise ExperimentInvalid(problems)
    return experiment
