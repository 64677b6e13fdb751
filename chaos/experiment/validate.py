"""Validate experiment files and report every problem at once, each on one line:

    experiments/edge-loss.yaml:14:5: method[1].latncy: unknown key; did you mean 'latency'?

Three passes over the same document, all of whose findings are kept: the YAML
parse (a syntax error stops there, nothing else can be trusted), the typed
model (pydantic, every error with its path), and cross-references between
parts of the file (ids used by ``after``, ``during``, ``known_weakness``).
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError

from chaos.errors import UsageError
from chaos.experiment import model as m
from chaos.experiment.loader import Document, PathKey, SyntaxProblem, parse_text, read_document


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    col: int
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}"


class ExperimentInvalid(UsageError):
    """An experiment file has problems; ``problems`` holds every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")
        self.problems = problems


def field_name(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _is_tag(part):
            out += f".{part}" if out else part
    return out or "experiment"


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and part.startswith(("step:", "fault:"))


def _data_path(loc: Iterable[str | int]) -> PathKey:
    return tuple(p for p in loc if not _is_tag(p))


def suggest(word: str, known: Iterable[str]) -> str:
    known = sorted(set(known))
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(known)}"


# ------------------------------------------------------------- model errors -> problems

_TAG_MODELS: dict[str, type[BaseModel]] = {
    "step:check": m.CheckStep,
    "step:wait": m.WaitStep,
    "step:parallel": m.ParallelStep,
}


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The single model class inside Optional[...] / list[...] / dict[..., ...], if any."""
    found: list[type[BaseModel]] = []

    def walk(ann: Any) -> None:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            found.append(ann)
            return
        for arg in typing.get_args(ann):
            walk(arg)

    walk(annotation)
    return found[0] if len(set(found)) == 1 else None


def _keys_of(cls: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in cls.model_fields.items()]


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class whose mapping sits at ``loc`` (loc as pydantic reports it, tags included)."""
    cls: type[BaseModel] | None = m.Experiment
    for part in loc:
        if isinstance(part, int):
            continue
        if part.startswith("fault:"):
            cls = m.FAULTS.get(part[6:])
            continue
        if part.startswith("step:"):
            cls = _TAG_MODELS.get(part, cls)
            continue
        if cls is None:
            return None
        fields = {f.alias or name: f for name, f in cls.model_fields.items()}
        if part not in fields:
            return None
        cls = _inner_model(fields[part].annotation)
    return cls


def _describe_input(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _model_problem(doc: Document, err: Any) -> Problem:
    loc: tuple[str | int, ...] = tuple(err["loc"])
    path = _data_path(loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    field = field_name(loc)
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        hint = suggest(str(loc[-1]), _keys_of(parent)) if parent else ""
        line, col = doc.positions.of_key(path)
        return Problem(line, col, doc.path, field, f"unknown key; {hint}".rstrip("; "))
    if kind == "missing":
        line, col = doc.positions.of_value(path[:-1])
        return Problem(line, col, doc.path, field, "required key is missing")
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
    line, col = doc.positions.of_value(path)
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
    elif kind == "string_pattern_mismatch":
        message = f"'{err['input']}' is not a link; write client->server, e.g. edge->state" if loc[-1] == "link" else (
            f"'{err['input']}' is not a valid name; use letters, digits, '.', '_' and '-'"
        )
    elif kind == "string_too_short":
        message = "must not be empty"
    elif kind == "literal_error" and str(ctx.get("expected")) == "True":
        message = "should be true; leave the key out to not assert it"
    else:
        message = err["msg"].replace("Input should be", "should be")
        if "input" in err and not isinstance(err["input"], (dict, list)) and kind != "literal_error":
            message += f", got {_describe_input(err['input'])}"
    return Problem(line, col, doc.path, field, message)


def _get(data: Any, path: PathKey) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


# ------------------------------------------------------------- cross-references


def _steps(data: dict[str, Any]) -> Iterable[tuple[PathKey, dict[str, Any]]]:
    for i, step in enumerate(data.get("method") or []):
        if not isinstance(step, dict):
            continue
        yield ("method", i), step
        for j, sub in enumerate(step.get("parallel") or [] if isinstance(step.get("parallel"), list) else []):
            if isinstance(sub, dict):
                yield ("method", i, "parallel", j), sub


HIT_REF = re.compile(r"\{([^{}]+)\.hit\}")


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
    for i, item in enumerate(data.get("recovery") if isinstance(data.get("recovery"), list) else []):
        after = item.get("after") if isinstance(item, dict) else None
        if isinstance(after, str) and after not in every_step:
            at(("recovery", i, "after"), f"no method step with id '{after}'; {suggest(after, every_step) if every_step else 'give the step an id'}")
    for path, item in _checks(data):
        for ref in HIT_REF.findall(json.dumps(item.get("expect"))):
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
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else f"a {type(doc.data).__name__}"
        return None, [Problem(1, 1, doc.path, "experiment", f"an experiment file is a mapping with at least a title, not {what}")]
    problems: list[Problem] = []
    experiment = None
    try:
        experiment = m.Experiment.model_validate(doc.data)
    except ValidationError as err:
        problems.extend(_model_problem(doc, e) for e in err.errors())
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
        doc = read_document(path)
    except SyntaxProblem as err:
        return None, [Problem(err.line, err.col, str(path), "file", err.message)]
    return validate_document(doc)


def load_experiment(path: str | Path) -> m.Experiment:
    """The typed experiment, or ExperimentInvalid carrying every problem."""
    experiment, problems = validate_file(path)
    if problems or experiment is None:
        raise ExperimentInvalid(problems)
    return experiment
