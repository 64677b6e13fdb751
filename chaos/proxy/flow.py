"""What a proxied connection is to its proxy, and what the proxy is to it.

Both paths implement :class:`Flow`: the fast path (``relay.Relay``, no toxic
chain) and the toxic path (``connection.Connection``). The proxy sees only
this protocol; a flow sees its proxy only through :class:`ProxyView`, so
neither module imports ``proxy.py``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

from chaos.proxy.toxics.base import Direction, End, Timer, ToxicSpec

if TYPE_CHECKING:
    from chaos.proxy.poller import Poller


class ChainChange(enum.Enum):
    ADDED = "added"
    UPDATED = "updated"
    REMOVED = "removed"


class Flow(Protocol):
    ordinal: int  # the proxy's count of accepted connections: part of every random seed
    closed: bool

    def toxic_changed(self, change: ChainChange, spec: ToxicSpec) -> None:
        """Apply a change of the proxy's toxics before the API answers (no byte lost or reordered)."""

    def close(self, end: End) -> None:
        """End both ways now: ``End.CUT`` drops, ``End.RESET`` sends RST, ``End.CLOSE`` flushes."""


class ProxyView(Protocol):
    """The parts of a proxy its connections use."""

    name: str
    seed: int
    poller: Poller | None
    counters: dict[Direction, list[int]]  # [received, sent] per direction
    toxics: dict[Direction, list[ToxicSpec]]
    connections: set[Flow]

    @property
    def timer(self) -> Timer: ...

    def cached_target(self) -> tuple[str, int] | None: ...
    async def dial_target(self) -> tuple[str, int]: ...
