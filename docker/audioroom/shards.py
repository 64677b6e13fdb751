"""Rooms to shards, and the fair share of shards one supervisor should hold."""

from __future__ import annotations

import math
import zlib


def shard_of(room: str, shards: int) -> int:
    """Stable shard number of ``room`` (crc32, identical in every process and language)."""
    return zlib.crc32(room.encode()) % shards


def fair_share(shards: int, live_supervisors: int) -> int:
    """How many shards one of ``live_supervisors`` should hold so that all are covered."""
    return math.ceil(shards / max(1, live_supervisors))
