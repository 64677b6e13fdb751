"""Compose variables: env files as docker-compose 1.29 reads them, ${VAR} interpolation."""

from __future__ import annotations

import pytest

from chaos.compose.variables import Interpolator, VariableError, parse_env_text


def test_env_file_lines_quotes_comments_and_export():
    text = "\n".join([
        "# a comment", "", "PLAIN=value", "export EXPORTED=yes", 'DOUBLE="two words\\nnext"', "SINGLE='$NOT_EXPANDED'",
        "TRAILING=abc   # comment", "EMPTY=", "BARE", "HASH=a#b",
    ])
    assert parse_env_text(text) == {
        "PLAIN": "value", "EXPORTED": "yes", "DOUBLE": "two words\nnext", "SINGLE": "$NOT_EXPANDED",
        "TRAILING": "abc", "EMPTY": "", "BARE": None, "HASH": "a#b",
    }


def test_env_file_bad_line_names_its_line():
    with pytest.raises(VariableError) as err:
        parse_env_text("A=1\nnot a line\n")
    assert err.value.line == 2


@pytest.mark.parametrize(("text", "expected"), [
    ("${A}", "1"), ("$A", "1"), ("x-${A}-y", "x-1-y"), ("$$A", "$A"), ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"),
    ("${EMPTY-d}", ""), ("${UNSET-d}", "d"), ("${A:-d}", "1"), ("${UNSET:-${A}}", "1"), ("no vars", "no vars"),
])
def test_interpolation_forms(text, expected):
    assert Interpolator({"A": "1", "EMPTY": ""})(text) == expected


def test_unset_variables_become_empty_and_are_remembered():
    fill = Interpolator({})
    assert fill("postgres://u:${PASSWORD}@db/x") == "postgres://u:@db/x"
    assert fill.unset == {"PASSWORD"}


@pytest.mark.parametrize("text", ["${UNSET:?must be set}", "${UNSET?must}", "${", "price: 5$", "${A B}"])
def test_interpolation_errors(text):
    with pytest.raises(VariableError):
        Interpolator({})(text)
