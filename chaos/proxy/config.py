"""The ``--config`` file: Toxiproxy's format (a JSON array of proxies, as its
``-config`` and ``/populate`` read them), plus toxics.

Beyond Toxiproxy (its issue #281): a proxy may list ``"toxics"``, each the
body ``POST /proxies/{proxy}/toxics`` takes; they are added at start.

A file is checked before anything starts, and refused with one line naming
the file, line, column and field: over :data:`MAX_BYTES`, nested deeper
than :data:`MAX_DEPTH`, not JSON, or a value of the wrong type. Keys are
matched as Toxiproxy's Go decoder matches them (case-insensitively);
unknown keys are ignored, as there, with a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.errors import UsageError

log = logging.getLogger("chaos.proxy")

# A thousand proxies with a few toxics each take well under 1 MiB: a file
# past 4 MiB is some other file (a log, a dump), not worth reading whole.
MAX_BYTES = 4 << 20
# A config needs 5 levels (list > proxy > toxics > toxic > attributes).
MAX_DEPTH = 32

_PROXY_FIELDS = {"name": str, "listen": str, "upstream": str, "enabled": bool, "toxics": list, "logger": dict}
_TYPE_WORDS = {str: "a string", bool: "true or false", list: "an array", dict: "an object"}


class ConfigError(UsageError):
    """A config file refused: one line with its place."""


@dataclass
class ProxyEntry:
    """One proxy of the file, with where it stands (for later errors)."""

    index: int  # 1-based, as Toxiproxy counts in its messages
    body: dict[str, Any]  # as /populate takes it
    where: str  # "file:line:col"
    toxics: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (body, where)

    @property
    def name(self) -> str:
        names = [v for k, v in self.body.items() if _fold(k) == "name"]
        return str(names[-1]) if names else ""


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


class _Text:
    """The file's text, for turning offsets into line:column."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.decoder = json.JSONDecoder()

    def where(self, offset: int) -> str:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return f"{self.path}:{line}:{column}"

    def fail(self, offset: int, message: str) -> ConfigError:
        return ConfigError(f"{self.where(offset)}: {message}")

    def skip_space(self, i: int) -> int:
        text = self.text
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def elements(self, start: int) -> list[int]:
        """Offsets of the elements of the (valid) array at ``start``."""
        offsets: list[int] = []
        i = self.skip_space(start + 1)
        if self.text[i] == "]":
            return offsets
        while True:
            offsets.append(i)
            _, i = self.decoder.raw_decode(self.text, i)
            i = self.skip_space(i)
            if self.text[i] == "]":
                return offsets
            i = self.skip_space(i + 1)

    def members(self, start: int) -> dict[str, int]:
        """Offset of each member's value in the (valid) object at ``start`` (the last of a repeated key)."""
        offsets: dict[str, int] = {}
        i = self.skip_space(start + 1)
        if self.text[i] == "}":
            return offsets
        while True:
            key, i = self.decoder.raw_decode(self.text, i)
            i = self.skip_space(self.skip_space(i) + 1)  # past ':'
            offsets[key] = i
            _, i = self.decoder.raw_decode(self.text, i)
            i = self.skip_space(i)
            if self.text[i] == "}":
                return offsets
            i = self.skip_space(i + 1)


def _depth_problem(text: str) -> int | None:
    """Offset where nesting goes past MAX_DEPTH, outside strings (None if it never does)."""
    depth = 0
    in_string = escaped = False
    for i, c in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif c in "]}":
            depth -= 1
    return None


def _fold(key: str) -> str:
    return key.replace("\u212a", "k").replace("\u017f", "s").lower()


def read_config(path: Path) -> list[ProxyEntry]:
    """Check the file and return its proxies; ConfigError (one located line) otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{path}: {size} bytes: over the {MAX_BYTES >> 20} MiB limit for a proxy config")
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read proxy config: {err.strerror or err}") from None
    if len(raw) > MAX_BYTES:  # grew since stat
        raise ConfigError(f"{path}: over the {MAX_BYTES >> 20} MiB limit for a proxy config")
    return parse_config(path, raw)


def parse_config(path: Path, raw: bytes) -> list[ProxyEntry]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        prefix = raw[:err.start].decode("utf-8", errors="replace")
        raise _Text(path, prefix).fail(len(prefix), "not UTF-8 text") from None
    doc = _Text(path, text)
    deep = _depth_problem(text)
    if deep is not None:
        raise doc.fail(deep, f"nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise doc.fail(err.pos, f"not valid JSON: {err.msg}") from None
    except ValueError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from None
    start = doc.skip_space(0)
    if not isinstance(data, list):
        raise doc.fail(start, f"expected a JSON array of proxies, found {_kind(data)}")
    entries = []
    for index, (item, offset) in enumerate(zip(data, doc.elements(start)), start=1):
        entries.append(_proxy_entry(doc, index, item, offset))
    return entries


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _proxy_entry(doc: _Text, index: int, item: Any, offset: int) -> ProxyEntry:
    what = f"proxy {index}"
    if not isinstance(item, dict):
        raise doc.fail(offset, f"{what}: expected an object, found {_kind(item)}")
    members = doc.members(offset)
    body: dict[str, Any] = {}
    toxics: list[tuple[dict[str, Any], str]] = []
    names = [v for k, v in item.items() if _fold(k) == "name" and isinstance(v, str) and v]
    if names:
        what = f"proxy {index} ({names[-1]})"
    for key, value in item.items():
        folded = _fold(key)
        where = members.get(key, offset)
        wanted = _PROXY_FIELDS.get(folded)
        if wanted is None:
            log.warning("%s: %s: unknown field %r ignored (as Toxiproxy does)", doc.where(where), what, key)
            continue
        if value is None:
            continue  # null leaves the default, as in Toxiproxy
        if not isinstance(value, wanted) or (wanted is not bool and isinstance(value, bool)):
            raise doc.fail(where, f"{what}: field {key!r} must be {_TYPE_WORDS[wanted]}, found {_kind(value)}")
        if folded == "toxics" and isinstance(value, list):  # a list: checked just above
            for t_index, (toxic, t_offset) in enumerate(zip(value, doc.elements(where)), start=1):
                if not isinstance(toxic, dict):
                    raise doc.fail(t_offset, f"{what}: toxic {t_index}: expected an object, found {_kind(toxic)}")
                toxics.append((toxic, doc.where(t_offset)))
        else:
            body[key] = value
    for required in ("name", "upstream"):
        if not any(_fold(k) == required and v for k, v in body.items()):
            raise doc.fail(offset, f"{what}: missing required field: {required}")
    return ProxyEntry(index, body, doc.where(offset), toxics)
