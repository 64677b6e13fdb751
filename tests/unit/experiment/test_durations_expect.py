from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaos.experiment.durations import format_duration, parse_duration
from chaos.experiment.expect import parse_expectation


@pytest.mark.parametrize(
    "text, seconds",
    [("300ms", 0.3), ("5s", 5.0), ("1m", 60.0), ("1m30s", 90.0), ("1.5s", 1.5), (2, 2.0), ("1h", 3600.0), (" 2s ", 2.0)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "5x", "s", "", "1m 30", "-1s", True, None, [1]])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10_000_000))
def test_duration_round_trip(ms: int) -> None:
    assert parse_duration(format_duration(ms / 1000)) == pytest.approx(ms / 1000, abs=1e-6)


@pytest.mark.parametrize(
    "expect, value, holds",
    [
        ("live", "live", True),
        ("live", "relaunching", False),
        (True, True, True),
        (True, "true", True),
        (True, 1, False),
        (3, 3.0, True),
        (">= 0.95", 0.96, True),
        (">= 0.95", 0.94, False),
        (">= 0.95", None, False),
        (">= 0.95", "live", False),
        ("< 500ms", 0.4, True),
        ("< 500ms", 0.5, False),
        (">= 90%", 0.9, True),
        ("!= ended", "live", True),
        ("== 0", 0, True),
        ({"one_of": ["live", "relaunching"]}, "relaunching", True),
        ({"one_of": [200, 201]}, 202, False),
        ({"between": [200, 201]}, 200.5, True),
        ({"between": ["100ms", "2s"]}, 2.0, True),
        ({"between": ["100ms", "2s"]}, 2.01, False),
    ],
)
def test_expectation_holds(expect: object, value: object, holds: bool) -> None:
    assert parse_expectation(expect).holds(value) is holds


@pytest.mark.parametrize(
    "expect, message",
    [
        ([200, 201], "bare list is ambiguous"),
        ({"one_of": []}, "non-empty"),
        ({"between": [1]}, "[low, high]"),
        ({"between": [2, 1]}, "above high"),
        ({"range": [1, 2]}, "one_of"),
        (">= fast", "needs a number"),
        ("", "empty"),
        (None, "missing"),
    ],
)
def test_expectation_rejects(expect: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_expectation(expect)


def test_expectation_keeps_author_text() -> None:
    assert str(parse_expectation(">= 0.95")) == ">= 0.95"
    assert str(parse_expectation({"one_of": ["a", "b"]})) == "one of ['a', 'b']"
