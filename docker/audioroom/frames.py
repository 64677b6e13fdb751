"""Audio frames on the wire: compact binary, so the crowd can measure delay, gaps and loss.

Layout (big-endian): magic 0xA7, version 1, generation u32, sequence u64,
send time f64 (wall clock, ms since the epoch), room id length u8, room id
(UTF-8), then padding up to the configured frame size (the "audio").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = 0xA7
VERSION = 1
_HEAD = struct.Struct(">BBIQdB")
HEADER_SIZE = _HEAD.size


class FrameError(ValueError):
    """Bytes that are not an audio frame."""


@dataclass(frozen=True)
class Frame:
    room: str
    generation: int
    seq: int
    sent_ms: float


def encode(frame: Frame, size: int = 0) -> bytes:
    """The frame's bytes, padded with zeros to at least ``size`` bytes."""
    room = frame.room.encode()
    if len(room) > 255:
        raise FrameError(f"room id longer than 255 bytes: {frame.room[:40]!r}...")
    head = _HEAD.pack(MAGIC, VERSION, frame.generation, frame.seq, frame.sent_ms, len(room)) + room
    return head + bytes(max(0, size - len(head)))


def decode(data: bytes | bytearray | memoryview) -> Frame:
    if len(data) < HEADER_SIZE:
        raise FrameError(f"frame of {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
    magic, version, generation, seq, sent_ms, room_len = _HEAD.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise FrameError(f"not an audio frame (magic {magic:#x}, version {version})")
    end = HEADER_SIZE + room_len
    if len(data) < end:
        raise FrameError("frame truncated inside the room id")
    return Frame(bytes(data[HEADER_SIZE:end]).decode(), generation, seq, sent_ms)


_FAST = struct.Struct(">xxIQd")


def peek(data: bytes | bytearray | memoryview) -> tuple[int, int, float]:
    """``(generation, seq, sent_ms)`` without building a Frame: the crowd's hot path."""
    return _FAST.unpack_from(data)
