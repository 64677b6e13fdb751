"""Durations and quantities with units, as authors write them: ``300ms``, ``5s``, ``1m30s``.

Everything is converted to plain numbers in base units (seconds, ratios,
bytes) so that the runner never deals with strings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_PATTERN = r"^\s*((\d+(\.\d+)?)(ms|s|m|h))+\s*$"


def parse_duration(value: Any) -> float:
    """Seconds from ``"300ms"``, ``"5s"``, ``"1m"``, ``"1m30s"`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number with a unit, e.g. 300ms, 5s, 1m")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number with a unit, e.g. 300ms, 5s, 1m")
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"'{value}' is not a duration; write e.g. 300ms, 5s, 1m or 1m30s")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: ``0.3`` -> ``300ms``, ``90`` -> ``1m30s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"{text}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m" + (format_duration(rest) if rest >= 0.001 else "")


# A pydantic field type: accepts "5s" or 5, holds float seconds, shows as a string pattern in the schema.
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": DURATION_PATTERN, "examples": ["300ms", "5s", "1m"]},
                {"type": "number", "minimum": 0, "description": "seconds"},
            ]
        }
    ),
]
