"""Registry of toxic types: one module per type; adding a type is one file
plus one line here."""

from __future__ import annotations

from chaos.proxy.toxics.bandwidth import Bandwidth
from chaos.proxy.toxics.base import InvalidAttributes, Toxic
from chaos.proxy.toxics.latency import Latency
from chaos.proxy.toxics.limit_data import LimitData
from chaos.proxy.toxics.noop import Noop
from chaos.proxy.toxics.reset_peer import ResetPeer
from chaos.proxy.toxics.slicer import Slicer
from chaos.proxy.toxics.slow_close import SlowClose
from chaos.proxy.toxics.timeout import Timeout

REGISTRY: dict[str, type[Toxic]] = {
    cls.type_name: cls
    for cls in (Noop, Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData)
}

__all__ = ["REGISTRY", "InvalidAttributes", "Toxic"]
