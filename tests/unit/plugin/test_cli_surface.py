"""The CLI surface: every verb (and sub-verb) has --help with an example; user errors are one line."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from roomquake_testutil import run_cli

from chaos.cli.main import cli, main


def _commands() -> list[tuple[str, ...]]:
    ctx = click.Context(cli)
    found = []
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        found.append((name,))
        if isinstance(command, click.Group):
            found += [(name, sub) for sub in command.list_commands(ctx)]
    return found


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(argv, capsys)


def test_every_verb_is_listed() -> None:
    verbs = {c[0] for c in _commands()}
    assert {"run", "validate", "list", "schema", "stack", "proxy", "images", "report", "gameday", "clean"} <= verbs
    assert {("stack", "up"), ("stack", "down"), ("stack", "status"), ("proxy", "serve")} <= set(_commands())


@pytest.mark.parametrize("words", _commands(), ids=" ".join)
def test_help_has_an_example(words: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([*words, "--help"], capsys)
    assert code == 0 and "Example" in out and f"roomquake {' '.join(words)}" in out


@pytest.mark.parametrize("argv, text", [
    (["report", "missing.json"], "missing.json: no such journal file"),
    (["run", "missing.yaml"], "missing.yaml"),
    (["gameday", "missing.yaml"], "missing.yaml"),
])
def test_user_errors_are_one_line_without_traceback(argv: list[str], text: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2 and text in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("roomquake: error: ")
    assert len([line for line in err.splitlines() if line.strip()]) <= 2  # the problem, then the summary


def test_verbose_shows_the_traceback(tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    from chaos.errors import UsageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="no such journal file"):
        main(["--verbose", "report", "missing.json"])
