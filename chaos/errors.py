"""Errors a user can act on: the CLI prints them as one line, no traceback."""

from __future__ import annotations


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
