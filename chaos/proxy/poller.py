"""Raw sockets watched through one epoll set, which the event loop watches.

The fast path (relay.py) needs readiness callbacks for sockets it drives
itself. uvloop's ``add_reader`` is not enough: libuv reports a socket whose
poll shows an error (say, a TCP reset arriving with the last bytes) as EBADF,
and uvloop then drops the watcher without ever calling the callback, so the
connection would hang. Here every event, error and hang-up included, reaches
the callbacks (which then meet the error in recv or send), and changing what
is watched costs a single epoll_ctl.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Any

Callback = Callable[[], None]
_IN = select.EPOLLIN | select.EPOLLRDHUP  # RDHUP: the peer's end, told with its last data
_OUT = select.EPOLLOUT
PEER_ENDED = select.EPOLLRDHUP
_TROUBLE = select.EPOLLERR | select.EPOLLHUP
_BATCH = 512  # events taken per wake-up; the rest wait for the next loop iteration


class Poller:
    """Per-fd read and write callbacks, like ``loop.add_reader``/``add_writer``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._epoll = select.epoll()
        self._watched: dict[int, list[Any]] = {}  # fd -> [on_readable, on_writable, mask]
        self.events = 0  # of the fd whose callback runs now (PEER_ENDED lets a reader take the end too)
        loop.add_reader(self._epoll.fileno(), self._dispatch)

    def set_reader(self, fd: int, callback: Callback | None) -> None:
        self._set(fd, 0, callback)

    def set_writer(self, fd: int, callback: Callback | None) -> None:
        self._set(fd, 1, callback)

    def watch(self, fd: int, on_readable: Callback | None, on_writable: Callback | None) -> None:
        """Set both callbacks with one epoll change."""
        self._set(fd, 0, on_readable, on_writable)

    def forget(self, fd: int, closing: bool = False) -> None:
        """Stop watching ``fd``; with ``closing`` (it is about to be closed, and
        not shared) the kernel drops it from the set, so no epoll_ctl is spent."""
        entry = self._watched.pop(fd, None)
        if entry is not None and entry[2] and not closing:
            self._epoll.unregister(fd)

    def _set(self, fd: int, slot: int, callback: Callback | None, other: Callback | None | bool = False) -> None:
        entry = self._watched.get(fd)
        if entry is None:
            if callback is None and not other:
                return
            entry = self._watched[fd] = [None, None, 0]
        entry[slot] = callback
        if other is not False:  # both slots at once (watch)
            entry[1 - slot] = other
        mask = (_IN if entry[0] is not None else 0) | (_OUT if entry[1] is not None else 0)
        if mask == entry[2]:
            return
        if not entry[2]:
            self._epoll.register(fd, mask)
        elif mask:
            self._epoll.modify(fd, mask)
        else:
            self._epoll.unregister(fd)
        entry[2] = mask

    def _dispatch(self) -> None:
        watched = self._watched
        for fd, events in self._epoll.poll(0, _BATCH):
            entry = watched.get(fd)
            if entry is None:
                continue
            if events & (_IN | _TROUBLE) and entry[0] is not None:
                self.events = events
                entry[0]()
            if events & (_OUT | _TROUBLE) and entry[1] is not None and watched.get(fd) is entry:
                entry[1]()

    def close(self) -> None:
        if self._epoll.closed:
            return
        self._loop.remove_reader(self._epoll.fileno())
        self._epoll.close()
        self._watched.clear()
