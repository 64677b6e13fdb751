"""Read a YAML or JSON file into plain Python values plus the position of every node.

One reader serves experiment files and stack files. Any error found later
(by pydantic or by cross-checks) is located through ``Positions``, so it can
point at ``file:line:col``.

These files are written by hand and are a few KiB, so whatever such a file
never needs and a hostile one can use to hang or exhaust the process is
refused, each with a located one-line message, before any value is built:

- anchors and aliases (``&a`` / ``*a``): an alias bomb ("billion laughs", a
  few hundred bytes) expands into gigabytes when its values are built.
  Compose files use them (``x-common: &common`` and ``<<: *common``), so
  ``parse_text(..., aliases=True)`` (chaos.compose) expands them instead,
  counting every copied value against ``MAX_NODES``: a bomb is refused after
  10,000 values, not after gigabytes; ``<<`` merge keys are applied as YAML
  1.1 (and docker-compose) do;
- tags (``!!python/object``, ``!mytag``, even ``!!str``): plain values only;
- files over ``MAX_BYTES``, more than ``MAX_NODES`` values, nesting deeper
  than ``MAX_DEPTH``, a second document, keys that are not text.

``MAX_BYTES`` is 128 KiB: the largest shipped file (the reference stack) is
about 9 KiB, so a real file has fourteen times that room, while a file at
the limit is parsed and validated within half a second of CPU even on a
loaded 2-core machine (``bench/cli.py --hostile`` measures it).
``MAX_NODES`` (10,000 keys and values: the reference stack has about 700, a
shipped experiment under 200) bounds the work of a file made of tiny values
(``[1,1,1,...]``) the same way.

Parsing uses libyaml through PyYAML's C parser (its event stream carries
line and column), about 20 times faster than a pure-Python parser. Plain
scalars are resolved here by YAML 1.2's core schema, as the files were
written for: PyYAML's own resolver is YAML 1.1's, where ``no`` is false,
``on`` is true and ``1:30`` is the integer 90.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_BYTES = 128 * 1024
MAX_NODES = 10_000
MAX_DEPTH = 32

PathKey = tuple[str | int, ...]


@dataclass
class Positions:
    """1-based (line, col) of each node's value and, for mapping entries, of its key."""

    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: PathKey) -> tuple[int, int]:
        """Position of the deepest known node on ``path`` (a missing key points at its parent)."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.values:
                return self.values[path[:cut]]
        return (1, 1)

    def of_key(self, path: PathKey) -> tuple[int, int]:
        return self.keys.get(path) or self.of_value(path)


@dataclass
class Document:
    path: str
    data: Any
    positions: Positions

    def where(self, path: PathKey) -> str:
        """``file:line:col`` of the deepest node of ``path`` found in the file."""
        line, col = self.positions.of_value(path)
        return f"{self.path}:{line}:{col}"


class SyntaxProblem(Exception):
    """The file cannot be read as plain YAML/JSON; carries the position (0, 0: the file as a whole)."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


# ----------------------------------------------------------- YAML 1.2 core schema (plain scalars)

_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


def plain_scalar(text: str) -> Any:
    """The value of an untagged, unquoted scalar under YAML 1.2's core schema."""
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    try:
        if _INT.fullmatch(text):
            return int(text)
        if _INT_OCT.fullmatch(text):
            return int(text[2:], 8)
        if _INT_HEX.fullmatch(text):
            return int(text[2:], 16)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits): left as text
        return text
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return float(text.replace(".", "").lower())  # "-.inf" -> "-inf"
    if _NAN.fullmatch(text):
        return float("nan")
    return text


# ----------------------------------------------------------- events -> plain values


@dataclass
class _Open:
    """A mapping or sequence being filled."""

    value: dict[str, Any] | list[Any]
    path: PathKey
    key: str | None = None  # mapping: the key whose value comes next
    anchor: str | None = None  # aliases=True: its value is an anchor's once complete


def _at(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def _size(value: Any) -> int:
    """How many values (keys and values) a built value holds, itself included."""
    if isinstance(value, dict):
        return 1 + sum(1 + _size(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_size(v) for v in value)
    return 1


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


MERGE = "<<"


def _merge(mapping: dict[str, Any], where: tuple[int, int]) -> None:
    """Apply a ``<<`` merge key: keys of the merged mapping(s) the mapping does not set itself (first source wins)."""
    sources = mapping.pop(MERGE)
    for source in sources if isinstance(sources, list) else [sources]:
        if not isinstance(source, dict):
            raise SyntaxProblem(*where, "a merge key (<<) takes a mapping or a list of mappings")
        for key, value in source.items():
            mapping.setdefault(key, _copy(value))


def _build(events: Any, positions: Positions, aliases: bool = False) -> Any:
    """Plain values from a YAML event stream, refusing anchors, aliases, tags and oversized structure.

    ``aliases``: expand anchors, aliases and merge keys instead (every copied value counts against MAX_NODES).
    """
    import yaml

    stack: list[_Open] = []
    anchors: dict[str, Any] = {}
    merges: set[int] = set()  # ids of mappings holding a merge key, applied when they end
    root: Any = None
    nodes = documents = 0
    for event in events:
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise SyntaxProblem(*_at(event.start_mark), "one document per file; a second one starts here")
            continue
        if isinstance(event, yaml.AliasEvent) and not aliases:
            raise SyntaxProblem(*_at(event.start_mark), f"YAML aliases (*{event.anchor}) are not allowed; write the value out")
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            done = stack.pop()
            if id(done.value) in merges:
                _merge(done.value, positions.values.get(done.path, (1, 1)))  # type: ignore[arg-type]
                merges.discard(id(done.value))
            if done.anchor is not None:
                anchors[done.anchor] = done.value
            continue
        if not isinstance(event, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.AliasEvent)):
            continue  # stream and document boundaries
        where = _at(event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                raise SyntaxProblem(*where, f"unknown or unfinished anchor *{event.anchor}")
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.value, dict) and parent.key is None:
                raise SyntaxProblem(*where, "a key must be text, not an alias")
            copied = _copy(anchors[event.anchor])
            nodes += _size(copied)
            if nodes > MAX_NODES:
                raise SyntaxProblem(*where, f"more than {MAX_NODES} keys and values once aliases are expanded")
            if parent is None:
                root = copied
                positions.values[()] = where
            elif isinstance(parent.value, dict):
                assert parent.key is not None
                positions.values[(*parent.path, parent.key)] = where
                parent.value[parent.key] = copied
                parent.key = None
            else:
                positions.values[(*parent.path, len(parent.value))] = where
                parent.value.append(copied)
            continue
        if event.anchor is not None and not aliases:
            raise SyntaxProblem(*where, f"YAML anchors (&{event.anchor}) are not allowed; write the value out")
        if event.tag is not None:
            tag = event.tag.replace("tag:yaml.org,2002:", "!!")  # as written
            raise SyntaxProblem(*where, f"YAML tags ({tag}) are not allowed; write a plain value")
        nodes += 1
        if nodes > MAX_NODES:
            raise SyntaxProblem(*where, f"more than {MAX_NODES} keys and values; an experiment or stack file has a few hundred")
        parent = stack[-1] if stack else None
        if isinstance(parent, _Open) and isinstance(parent.value, dict) and parent.key is None:
            if not isinstance(event, yaml.ScalarEvent):
                raise SyntaxProblem(*where, "a key must be text, not a list or a mapping")
            if event.value in parent.value:
                raise SyntaxProblem(*where, f"not valid YAML/JSON: duplicate key '{event.value}'")
            parent.key = event.value
            positions.keys[(*parent.path, event.value)] = where
            if aliases and event.value == MERGE and event.implicit[0] and not event.style:
                merges.add(id(parent.value))
            continue
        if isinstance(event, yaml.ScalarEvent):
            plain = event.implicit[0] and not event.style
            value: Any = plain_scalar(event.value) if plain else event.value
        else:
            value = {} if isinstance(event, yaml.MappingStartEvent) else []
        if parent is None:
            path: PathKey = ()
            root = value
        elif isinstance(parent.value, dict):
            assert parent.key is not None
            path = (*parent.path, parent.key)
            parent.value[parent.key] = value
            parent.key = None
        else:
            path = (*parent.path, len(parent.value))
            parent.value.append(value)
        positions.values[path] = where
        if isinstance(value, (dict, list)) and not isinstance(event, yaml.ScalarEvent):
            if len(stack) >= MAX_DEPTH:
                raise SyntaxProblem(*where, f"nested more than {MAX_DEPTH} levels deep")
            stack.append(_Open(value, path, anchor=event.anchor))
        elif event.anchor is not None:
            anchors[event.anchor] = value
    return root


def _parse_error(err: Exception, text: str) -> SyntaxProblem:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    position = getattr(err, "position", None)  # a reader error: an index into the text
    if mark is not None:
        line, col = _at(mark)
    elif isinstance(position, int):
        before = text[:position]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
    else:
        line, col = 1, 1
    problem = getattr(err, "problem", None) or getattr(err, "reason", None) or getattr(err, "context", None) or str(err)
    problem = " ".join(str(problem).split())
    return SyntaxProblem(line, col, f"not valid YAML/JSON: {problem}")


def parse_text(text: str, path: str = "<string>", aliases: bool = False) -> Document:
    """The document in ``text``; SyntaxProblem (located) if it is not plain YAML/JSON within the limits.

    ``aliases``: anchors, aliases and ``<<`` merge keys are expanded (bounded by MAX_NODES), as Compose files need.
    """
    if len(text) > MAX_BYTES:
        raise SyntaxProblem(0, 0, too_big(len(text.encode("utf-8", "surrogatepass"))))
    import yaml

    loader = yaml.CSafeLoader if getattr(yaml, "__with_libyaml__", False) else yaml.SafeLoader
    positions = Positions()
    try:
        data = _build(yaml.parse(text, Loader=loader), positions, aliases)
    except SyntaxProblem:
        raise
    except yaml.YAMLError as err:
        raise _parse_error(err, text) from None
    except (RecursionError, MemoryError, ValueError) as err:  # never a traceback, whatever the input
        raise SyntaxProblem(1, 1, f"not valid YAML/JSON: {type(err).__name__}") from None
    positions.values.setdefault((), (1, 1))
    return Document(path, data, positions)


def too_big(size: int) -> str:
    return (f"the file is {size:,} bytes; the limit is {MAX_BYTES:,} "
            "(experiment and stack files are a few KiB; a larger one is refused unread)")


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of a regular file of at most MAX_BYTES, or SyntaxProblem(0, 0, reason)."""
    file = Path(path)
    article = "an" if what[:1] in "aeiou" else "a"
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise SyntaxProblem(0, 0, f"no such {what}") from None
    except OSError as err:
        raise SyntaxProblem(0, 0, f"cannot read: {err.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise SyntaxProblem(0, 0, f"is a directory, not {article} {what}")
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block, /dev/zero never ends
        raise SyntaxProblem(0, 0, f"is not a regular file, not {article} {what}")
    if info.st_size > MAX_BYTES:
        raise SyntaxProblem(0, 0, too_big(info.st_size))
    try:
        with open(file, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as err:
        raise SyntaxProblem(0, 0, f"cannot read: {err.strerror}") from None
    if len(raw) > MAX_BYTES:  # it grew since stat
        raise SyntaxProblem(0, 0, too_big(len(raw)))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise SyntaxProblem(line, col, f"not UTF-8 text ({err.reason} at byte {err.start})") from None


def read_document(path: str | Path, what: str = "file", aliases: bool = False) -> Document:
    """Read and parse a file; every refusal is a SyntaxProblem."""
    return parse_text(read_text(path, what), str(path), aliases)
