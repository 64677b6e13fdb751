"""State kept per running stack (scrape and response histories): made on first use, gone with the stack."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerStack(Generic[T]):
    """One ``T`` per stack object, held weakly so that it goes when the stack does."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._weak: weakref.WeakKeyDictionary[object, T] = weakref.WeakKeyDictionary()
        self._by_id: dict[int, T] = {}  # stacks that cannot be weakly referenced (rare: slotted test doubles)
        self._lock = threading.Lock()

    def of(self, stack: object) -> T:
        with self._lock:
            try:
                found = self._weak.get(stack)
                if found is None:
                    found = self._weak[stack] = self._make()
                return found
            except TypeError:
                return self._by_id.setdefault(id(stack), self._make())
