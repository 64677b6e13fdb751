"""Errors of the stack layer (one line each, see chaos.errors)."""

from __future__ import annotations

from chaos.errors import RoomquakeError, UsageError


class StackFileError(UsageError):
    """The stack file (or a scale/profile given with it) is wrong; nothing was started."""


class StackError(RoomquakeError):
    """The stack could not be brought up, reached or driven."""


class Unsupported(StackError):
    """The backend has no way to do this (e.g. squeeze on local processes)."""


class UnknownRun(UsageError):
    """No running stack with that run id is recorded."""
