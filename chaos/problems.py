"""Located problems, and pydantic's validation errors translated into them.

One translator serves experiment files and stack files: each pydantic error
becomes one ``Problem`` naming ``file:line:col``, the field as the author
wrote it (``method[1].latency``) and a message in the author's terms
(``unknown key; did you mean 'latency'?``), never pydantic's internals (its
union tags and member names in the location, ``Input should be``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaos.yamldoc import Document, PathKey

# How many problems of one file are worth printing; the rest are counted.
SHOWN = 25


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    col: int
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return one_line(f"{where}: {self.field}: {self.message}")


def one_line(text: str) -> str:
    """Control characters (a newline in a key, a NUL in a value) escaped: a problem is always one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def plural(count: int, word: str) -> str:
    """``1 problem``, ``2 problems``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def shown(problems: list[Problem], limit: int = SHOWN) -> list[str]:
    """The lines to print for a file's problems: the first ``limit``, then how many more."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"{problems[0].file}: ... and {plural(len(problems) - limit, 'more problem')}")
    return lines


def field_name(path: Iterable[str | int], root: str = "experiment") -> str:
    """``("method", 1, "latency")`` -> ``method[1].latency``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or root


def suggest(word: str, known: Iterable[str]) -> str:
    import difflib  # only when a name is unknown: not on every command's path

    known = sorted(set(known))
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(known)}"


def describe_input(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------- where an error is


def data_path(data: Any, loc: tuple[Any, ...], keep_last: bool) -> PathKey:
    """The parts of pydantic's ``loc`` that index into the file's data.

    Pydantic puts union tags (``fault:kill``, ``http_json``), union member
    names (``str``, ``int``) and ``[key]`` into locations; they are not in the
    file, so walking the data alongside drops them. ``keep_last`` keeps the
    final part even when absent (a missing key's name).
    """
    path: list[str | int] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif keep_last and i == len(loc) - 1 and isinstance(part, str) and part != "[key]":
            path.append(part)
    return tuple(path)


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def members(annotation: Any) -> list[Any]:
    """The types of a union (Optional and Annotated unwrapped); [annotation] for any other."""
    annotation = _strip(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for a in typing.get_args(annotation) for m in members(a) if m is not type(None)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _child(annotation: Any, part: str | int) -> Any:
    """The annotation one step down ``part`` (a field, an index, a dict key), or None."""
    for member in members(annotation):
        origin = typing.get_origin(member)
        if _is_model(member) and isinstance(part, str):
            for name, info in member.model_fields.items():
                if part in (name, info.alias):
                    return info.annotation
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            return typing.get_args(member)[0]
        elif origin is dict and isinstance(part, str):
            return typing.get_args(member)[1]
    return None


def model_at(root: Any, loc: tuple[Any, ...], tags: Mapping[str, Any]) -> Any:
    """The model class whose mapping sits at pydantic's ``loc`` (tags switch to their member), or None."""
    annotation = root
    for part in loc:
        if isinstance(part, str) and part in tags:
            annotation = tags[part]
            continue
        annotation = _child(annotation, part)
        if annotation is None:
            return None
    models = [m for m in members(annotation) if _is_model(m)]
    return models[0] if len(models) == 1 else None


def keys_of(model: Any) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


# ------------------------------------------------------------- the translator

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

Special = Callable[[Document, "ErrorDetails", PathKey, str], "Problem | None"]


@dataclass(frozen=True)
class Translator:
    """Pydantic errors of validating ``doc.data`` against ``root`` -> located problems.

    ``tags``: the discriminator tags pydantic may put in a location, and the
    model each stands for (so an unknown key under a tagged member gets
    did-you-mean suggestions from that member's keys). ``special``: a
    domain's own wording for some errors (None: the generic one).
    ``root_name``: the field name shown for the document itself.
    """

    root: Any
    tags: Mapping[str, Any]
    root_name: str = "experiment"
    special: Special | None = None

    def problems(self, doc: Document, errors: Iterable[ErrorDetails]) -> list[Problem]:
        return [self.problem(doc, err) for err in errors]

    def problem(self, doc: Document, err: ErrorDetails) -> Problem:
        loc: tuple[Any, ...] = tuple(err["loc"])
        kind = err["type"]
        path = data_path(doc.data, loc, keep_last=kind == "missing")
        field = field_name(path, self.root_name)
        if self.special is not None:
            found = self.special(doc, err, path, field)
            if found is not None:
                return found
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            parent = model_at(self.root, loc[:-1], self.tags)
            hint = suggest(str(loc[-1]), keys_of(parent)) if parent else ""
            line, col = doc.positions.of_key(path)
            return Problem(line, col, doc.path, field, f"unknown key; {hint}".rstrip("; "))
        if kind == "missing":
            line, col = doc.positions.of_value(path[:-1])
            return Problem(line, col, doc.path, field, "required key is missing")
        line, col = doc.positions.of_key(path) if loc[-1:] == ("[key]",) else doc.positions.of_value(path)
        if kind == "union_tag_invalid":
            given = str(ctx.get("tag", ""))
            expected = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip(" '")]
            name = str(ctx.get("discriminator", "kind")).strip("'")
            return Problem(line, col, doc.path, field, f"unknown {name} '{given}'; {suggest(given, expected)}")
        if kind == "value_error":
            message = str(ctx.get("error", err["msg"]))
        elif kind == "string_too_short" and ctx.get("min_length") == 1:
            message = "must not be empty"
        elif kind == "literal_error" and str(ctx.get("expected")) == "True":
            message = "should be true; leave the key out to not assert it"
        else:
            message = str(err["msg"]).replace("Input should be", "should be").replace("Value error, ", "")
            if "input" in err and not isinstance(err["input"], (dict, list)) and kind != "literal_error":
                message += f", got {describe_input(err['input'])}"
        return Problem(line, col, doc.path, field, message)
