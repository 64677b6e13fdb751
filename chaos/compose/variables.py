"""Compose's variables: ``.env`` / ``env_file`` files and ``${VAR}`` interpolation, as docker-compose 1.29 reads them.

Hand-written rather than python-dotenv: the format is a dozen lines of
rules, and the importer needs to say exactly which variables were unset
(they become empty strings, as docker-compose warns), which a library hides.

Interpolation (every string value of a Compose file):
``$$`` -> ``$``; ``$VAR`` and ``${VAR}``; ``${VAR:-default}`` (unset or
empty), ``${VAR-default}`` (unset); ``${VAR:?message}`` / ``${VAR?message}``
(an error). Values come from the process environment, then the project's
``.env`` file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_LINE = re.compile(rf"^\s*(?:export\s+)?({_NAME})\s*(?:=\s*(.*?))?\s*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class VariableError(ValueError):
    """A line of an env file or an interpolation that cannot be read; ``line`` is 1-based (0: unknown)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.line = line


def _unquote(raw: str, line: int) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        while quote == '"' and end > 0 and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end < 0:
            raise VariableError(f"unterminated {quote} quote", line)
        body = raw[1:end]
        if quote == '"':
            body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
        return body
    # Unquoted: a ' #' starts a comment.
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse_env_text(text: str) -> dict[str, str | None]:
    """``KEY=VALUE`` lines (``export`` allowed, quotes, comments); a bare ``KEY`` has no value (None)."""
    out: dict[str, str | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise VariableError(f"not a KEY=VALUE line: {stripped[:60]!r}", number)
        key, raw = match.group(1), match.group(2)
        out[key] = None if raw is None else _unquote(raw, number)
    return out


def read_env_file(path: Path) -> dict[str, str | None]:
    from chaos import yamldoc

    try:
        text = yamldoc.read_text(path, "env file")  # the same size and file-kind limits as every file we read
    except yamldoc.SyntaxProblem as err:
        raise VariableError(err.message, err.line) from None
    return parse_env_text(text)


_TOKEN = re.compile(rf"\$(?:(\$)|({_NAME})|\{{({_NAME})(?:(:?[-?])((?:[^{{}}]|\{{[^{{}}]*\}})*))?\}}|(\{{|))")


@dataclass
class Interpolator:
    """Fills ``${VAR}`` from ``values``; remembers which variables were unset (docker-compose: blank, with a warning)."""

    values: Mapping[str, str]
    unset: set[str] = field(default_factory=set)

    def __call__(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            escaped, bare, name, op, arg, broken = match.groups()
            if escaped:
                return "$"
            if broken is not None:
                raise VariableError(f"invalid interpolation format in {text!r}: write $$ for a literal $")
            name = bare or name
            value = self.values.get(name)
            if op in (":-", "-"):
                if value is None or (op == ":-" and value == ""):
                    return self(arg or "")
                return value
            if op in (":?", "?"):
                if value is None or (op == ":?" and value == ""):
                    raise VariableError(f"required variable {name} is missing a value: {self(arg or '')}".rstrip(": "))
                return value
            if value is None:
                self.unset.add(name)
                return ""
            return value

        return _TOKEN.sub(one, text)
