"""Toxic types, one module each; a module registers its type itself
(``@register``), so a new toxic is one new file here."""

from __future__ import annotations

import importlib
import pkgutil

from chaos.proxy.toxics.base import REGISTRY, Toxic

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Toxic"]
