"""Expectations: what a probe's value must be, written the way people say it.

    expect: live            equality (strings, booleans, numbers)
    expect: ">= 0.95"       comparison; units allowed: "< 500ms", ">= 90%"
    expect: {one_of: [live, relaunching]}
    expect: {between: [0.9, 1.0]}   inclusive
    expect: "!= {kill-edge.hit}"     what a fault step hit, filled in once it is known
    expect: {rises_by: 1}           recovery checks only: at least 1 above the probe's last
                                    value before the fault (a counter others may have moved)

A bare list is rejected on purpose: Chaos Toolkit reads ``[200, 201]`` as a
range and ``[200, 201, 202]`` as a set, and authors cannot tell which.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

from chaos.experiment.durations import _UNITS

Value = str | float | bool | None

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_COMPARISON = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
_NUMBER = re.compile(r"^([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(ms|s|m|h|%)?$")
HIT_REF = re.compile(r"\{([^{}]+)\.hit\}")  # {step-id.hit}: what that fault step hit


def parse_value(text: Any) -> Value:
    """A literal from an expectation: number (with unit), boolean, null or word."""
    if text is None or isinstance(text, (bool, int, float)):
        return float(text) if isinstance(text, int) and not isinstance(text, bool) else text
    raw = str(text).strip()
    low = raw.lower()
    if low in ("true", "yes"):
        return True
    if low in ("false", "no"):
        return False
    if low in ("null", "none", "~"):
        return None
    match = _NUMBER.match(raw)
    if match:
        number, unit = float(match.group(1)), match.group(2)
        if unit == "%":
            return number / 100.0
        return number * _UNITS[unit] if unit else number
    return raw


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class Expectation:
    """A parsed ``expect``; ``text`` is what the author wrote, for messages."""

    op: str  # one of _OPS, "one_of", "between", "rises_by"
    values: tuple[Value, ...]
    text: str
    written: Any = dataclasses.field(default=None, compare=False)  # a mapping form as written (as_written)

    def holds(self, observed: Any) -> bool:
        if self.op == "rises_by":
            return False  # relative: only judged once bound to a value before the fault (from_baseline)
        if self.op == "one_of":
            return any(_equal(observed, v) for v in self.values)
        if self.op == "between":
            num, low, high = _numeric(observed), _numeric(self.values[0]), _numeric(self.values[1])
            return num is not None and low is not None and high is not None and low <= num <= high
        expected = self.values[0]
        if self.op == "==":
            return _equal(observed, expected)
        if self.op == "!=":
            return not _equal(observed, expected)
        num, want = _numeric(observed), _numeric(expected)
        if num is None or want is None:
            return False  # no value or not a number: an ordering cannot hold
        return _OPS[self.op](num, want)

    def from_baseline(self, baseline: Any, read_at: float) -> Expectation:
        """A ``rises_by`` bound to the probe's value before the fault (read at ``read_at``): ``>= baseline + step``."""
        if self.op != "rises_by":
            return self
        base = _numeric(baseline)
        if base is None:
            raise ValueError(f"{self.text}: the value before the fault (t={read_at:.2f}s) is {baseline!r}, "
                             "not a number to rise from")
        target = base + float(_numeric(self.values[0]) or 0.0)
        return Expectation(">=", (target,), f">= {target:g} ({self.text} from {base:g} at t={read_at:.2f}s)")

    def as_written(self) -> Any:
        """What parses back to this expectation: the mapping as written for one_of, between and rises_by
        (their text, "one of [...]", would read back as a word to equal), else the text."""
        return self.text if self.written is None else self.written

    def __str__(self) -> str:
        return self.text


def _equal(observed: Any, expected: Value) -> bool:
    if isinstance(expected, bool) or isinstance(observed, bool):
        return observed is expected or (isinstance(observed, str) and parse_value(observed) is expected)
    if isinstance(expected, float):
        num = _numeric(observed)
        return num is not None and abs(num - expected) <= 1e-9 * max(1.0, abs(expected))
    if expected is None:
        return observed is None
    return str(observed) == expected


RISES_ONLY_IN_RECOVERY = ("{rises_by: N} compares with the probe's value before a fault: only a recovery check "
                          "with within takes it")


def parse_expectation(raw: Any, rises: bool = False) -> Expectation:
    """Parse an ``expect`` value; raise ValueError with a message fit for one line.

    ``rises``: ``{rises_by: N}`` is allowed (a recovery check's expectation).
    """
    if isinstance(raw, list):
        raise ValueError(
            "a bare list is ambiguous; write {one_of: [...]} for a set or {between: [low, high]} for a range"
        )
    if isinstance(raw, dict):
        if set(raw) == {"one_of"}:
            items = raw["one_of"]
            if not isinstance(items, list) or not items:
                raise ValueError("one_of takes a non-empty list of values")
            values = tuple(parse_value(v) for v in items)
            return Expectation("one_of", values, f"one of {list(items)}", raw)
        if set(raw) == {"between"}:
            pair = raw["between"]
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError("between takes [low, high]")
            lo, hi = (parse_value(v) for v in pair)
            low, high = _numeric(lo), _numeric(hi)
            if low is None or high is None:
                raise ValueError("between takes two numbers, e.g. [0.9, 1.0] or [100ms, 2s]")
            if low > high:
                raise ValueError(f"between: low {pair[0]} is above high {pair[1]}")
            return Expectation("between", (lo, hi), f"between {pair[0]} and {pair[1]}", raw)
        if set(raw) == {"rises_by"}:
            if not rises:
                raise ValueError(RISES_ONLY_IN_RECOVERY)
            step = parse_value(raw["rises_by"])
            amount = _numeric(step)
            if isinstance(step, bool) or amount is None or amount <= 0:
                raise ValueError(f"rises_by takes a positive number, e.g. {{rises_by: 1}}; got {raw['rises_by']!r}")
            return Expectation("rises_by", (step,), f"rises by {raw['rises_by']}", raw)
        raise ValueError("an expectation mapping is {one_of: [...]}, {between: [low, high]} or, in a recovery check, "
                         "{rises_by: N}")
    if isinstance(raw, str):
        match = _COMPARISON.match(raw)
        if match:
            op, literal = match.groups()
            value = parse_value(literal)
            if op not in ("==", "!=") and _numeric(value) is None:
                raise ValueError(f"'{raw}': {op} needs a number, e.g. '>= 0.95', '< 500ms', '>= 90%'")
            return Expectation(op, (value,), raw.strip())
        if not raw.strip():
            raise ValueError("an expectation cannot be empty")
        return Expectation("==", (parse_value(raw),), raw.strip())
    if raw is None:
        raise ValueError("missing expectation; e.g. expect: live or expect: '>= 0.95'")
    return Expectation("==", (parse_value(raw),), str(raw).lower() if isinstance(raw, bool) else str(raw))


def hit_refs(text: str) -> list[str]:
    """The fault step ids a text refers to with ``{step-id.hit}``."""
    return HIT_REF.findall(text)


def fill_hits(expect: Expectation, hits: Mapping[str, list[str]]) -> Expectation:
    """``expect`` with each ``{step-id.hit}`` replaced by what that step hit (comma-separated; unknown: left as is)."""
    if not any(isinstance(v, str) and HIT_REF.search(v) for v in expect.values):
        return expect

    def fill(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return HIT_REF.sub(lambda mt: ",".join(hits.get(mt.group(1), [])) or mt.group(0), value)

    return dataclasses.replace(expect, values=tuple(fill(v) for v in expect.values), text=fill(expect.text))
