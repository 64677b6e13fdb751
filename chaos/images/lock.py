"""A file lock so that two processes building images at once build them once."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chaos.errors import EnvironmentProblem


@contextmanager
def file_lock(
    path: Path,
    *,
    timeout: float = 1800.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive flock on ``path``; the kernel drops it if we die."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(f"waiting for another roomquake process building images ({path})")
                    told = True
                if time.monotonic() > deadline:
                    raise EnvironmentProblem(
                        f"gave up after {timeout:.0f} s waiting for the image build lock {path}",
                        hint="another roomquake process is still building images; wait for it or end it",
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing releases the lock
