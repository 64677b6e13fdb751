"""Errors a user can act on: the CLI prints them as one line, no traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RoomquakeError(Exception):
    """Base of every error the toolkit raises on purpose.

    The message is one line that says what is wrong and, where possible,
    what to do about it. ``exit_code`` is what the CLI exits with.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def one_line(self) -> str:
        text = str(self)
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(RoomquakeError):
    """Bad input from the user: a file, a flag, a name."""


class EngineError(RoomquakeError):
    """The Docker engine is missing, unreachable or refused a request."""


class EnvironmentProblem(RoomquakeError):
    """The machine lacks something: a tool, root, disk space."""


def suggest(word: str, known: Iterable[str]) -> str:
    """The tail of an error about an unknown name: the closest known one, else every known one."""
    names = sorted(set(known))
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(names)}"
