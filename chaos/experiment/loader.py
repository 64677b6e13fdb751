"""Read YAML or JSON into plain Python values plus the position of every node.

ruamel.yaml parses both (JSON is YAML 1.2); its round-trip nodes carry line
and column, which we copy into a flat index keyed by path so that any error
found later (by pydantic or by cross-checks) can point at file:line:col.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

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


class SyntaxProblem(Exception):
    """The file is not valid YAML/JSON; carries the position of the problem."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


def _plain(node: Any, path: PathKey, pos: Positions) -> Any:
    """Copy ruamel's nodes into builtins (ScalarFloat & co. become float...) while indexing positions."""
    if isinstance(node, CommentedMap):
        out: dict[Any, Any] = {}
        for key in node:
            child = (*path, str(key))
            kl, kc = node.lc.key(key)
            vl, vc = node.lc.value(key)
            pos.keys[child] = (kl + 1, kc + 1)
            pos.values[child] = (vl + 1, vc + 1)
            out[str(key)] = _plain(node[key], child, pos)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, item in enumerate(node):
            child = (*path, index)
            line, col = node.lc.item(index)
            pos.values[child] = (line + 1, col + 1)
            items.append(_plain(item, child, pos))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node  # dates and other YAML scalars: left to validation to reject


def parse_text(text: str, path: str = "<string>") -> Document:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (err.problem or err.context or "invalid YAML").strip()
        dup = re.search(r'duplicate key "([^"]*)"', problem)
        if dup:
            problem = f"duplicate key '{dup.group(1)}'"
        raise SyntaxProblem(line, col, f"not valid YAML/JSON: {problem}") from None
    except Exception as err:  # ruamel raises a few unmarked errors (e.g. bad unicode)
        raise SyntaxProblem(1, 1, f"not valid YAML/JSON: {err}") from None
    positions = Positions()
    positions.values[()] = (1, 1)
    if isinstance(root, (CommentedMap, CommentedSeq)):
        positions.values[()] = (root.lc.line + 1, root.lc.col + 1)
    return Document(path, _plain(root, (), positions), positions)


def read_document(path: str | Path) -> Document:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SyntaxProblem(0, 0, "no such file") from None
    except IsADirectoryError:
        raise SyntaxProblem(0, 0, "is a directory, not an experiment file") from None
    except UnicodeDecodeError as err:
        raise SyntaxProblem(1, 1, f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise SyntaxProblem(0, 0, f"cannot read: {err.strerror}") from None
    return parse_text(text, str(path))
