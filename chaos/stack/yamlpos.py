"""YAML loading that remembers where every key and item came from.

Stack files are validated by pydantic on plain data; when a field is wrong
we map pydantic's location (a tuple of keys and indexes) back to the
``line:column`` in the file, so the error names the exact spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from chaos.stack.errors import StackFileError as UsageError


@dataclass(frozen=True)
class Located:
    """Plain data of a YAML document plus the round-trip tree for positions."""

    path: str
    data: Any
    tree: Any

    def where(self, loc: tuple[Any, ...]) -> str:
        """``file:line:col`` of the deepest part of ``loc`` found in the file."""
        line, col = position(self.tree, loc)
        if line is None:
            return self.path
        return f"{self.path}:{line + 1}:{col + 1}"


def _plain(node: Any) -> Any:
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def loads(text: str, path: str = "<string>") -> Located:
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        raise UsageError(f"{where}: not valid YAML: {err.problem or err.context}") from None
    return Located(path=path, data=_plain(tree), tree=tree)


def load(path: str | Path) -> Located:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{p}: no such stack file") from None
    except OSError as err:
        raise UsageError(f"{p}: cannot read: {err.strerror}") from None
    return loads(text, str(p))


def position(tree: Any, loc: tuple[Any, ...]) -> tuple[int | None, int | None]:
    """0-based (line, col) of the node at ``loc``; the nearest parent if missing."""
    line: int | None = None
    col: int | None = None
    node = tree
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.key(key)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line, col = node.lc.item(key)
            node = node[key]
        else:
            break
    return line, col
