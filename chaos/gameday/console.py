"""The operator's keys: a thread reading the terminal (single keys) or a pipe (lines).

Terminal: Enter runs the next step, ``h`` halts, any other key starts a note
(Enter saves it, Esc drops it). Pipe (no terminal): an empty line runs the
next step, ``h`` halts, any other line is a note. Ctrl-C always halts (the
runner turns SIGINT into an abort with every fault rolled back).
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from typing import Any, Protocol, TextIO


class Operator(Protocol):
    def advance(self) -> None: ...
    def note(self, text: str) -> None: ...
    def halt(self, by: str = "key") -> None: ...


class Console:
    def __init__(self, operator: Operator, stream: TextIO | None = None) -> None:
        self.operator = operator
        self.stream = stream or sys.stdin
        self.buffer: str | None = None  # a note being typed (terminal mode)
        self.closed = threading.Event()
        self.is_tty = self.stream.isatty()

    def handle_line(self, line: str) -> None:
        text = line.strip()
        if not text:
            self.operator.advance()
        elif text.lower() in ("h", "halt"):
            self.operator.halt("key")
        else:
            self.operator.note(text)

    def handle_key(self, key: str) -> None:
        if self.buffer is not None:
            if key in ("\r", "\n"):
                text, self.buffer = self.buffer.strip(), None
                if text:
                    self.operator.note(text)
            elif key == "\x1b":
                self.buffer = None
            elif key in ("\x7f", "\b"):
                self.buffer = self.buffer[:-1]
            elif key.isprintable():
                self.buffer += key
            return
        if key in ("\r", "\n"):
            self.operator.advance()
        elif key in ("h", "H"):
            self.operator.halt("key")
        elif key.isprintable():
            self.buffer = "" if key in ("n", "N") else key

    def _read_lines(self) -> None:
        for line in self.stream:
            if self.closed.is_set():
                return
            self.handle_line(line)

    def _read_keys(self) -> None:
        fd = self.stream.fileno()
        while not self.closed.is_set():
            try:
                data = os.read(fd, 64)
            except OSError:
                return
            if not data:
                return
            for key in data.decode("utf-8", "replace"):
                self.handle_key(key)

    @contextlib.contextmanager
    def running(self) -> Iterator[Console]:
        """Read in a daemon thread for the ``with`` block (terminal in cbreak mode, restored after)."""
        saved: Any = None
        if self.is_tty:
            fd = self.stream.fileno()
            saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)  # keys one by one, no echo; Ctrl-C still sends SIGINT
        thread = threading.Thread(target=self._read_keys if self.is_tty else self._read_lines, name="operator", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.closed.set()
            if saved is not None:
                termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, saved)
