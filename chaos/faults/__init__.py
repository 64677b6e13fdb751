"""Faults: what a method step does to a running stack, and how it is undone.

The contract and the registry are in ``base.py``, undo as data in
``undo.py``, targets in ``targets.py``. Every other module here is a family
of fault kinds, each a model and a handler registered with one line
(``register(KillFault, OnInstances(...))``); this package imports every
module in it, so a new fault is one new module here. The experiment model
collects the registered models into its method steps.
"""

from __future__ import annotations

import importlib
import pkgutil

from chaos.faults.base import Ahead, Fault, FaultContext, Injection, Kind, Part, Registrar, kind_of, kinds, register, run_parts
from chaos.faults.model import FaultBase

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def prepare(step: FaultBase, step_id: str, ctx: FaultContext) -> list[Part]:
    """Resolve the step's targets (and create the clients it needs) now; nothing is done to the stack yet."""
    return kind_of(step).handler.prepare(step, step_id, ctx)


def inject(step: FaultBase, step_id: str, ctx: FaultContext, done: Registrar, ahead: Ahead | None = None) -> None:
    """Prepare the step and do its parts one after the other, registering each undo as it is done."""
    run_parts(prepare(step, step_id, ctx), done, ahead)


__all__ = ["Ahead", "Fault", "FaultBase", "FaultContext", "Injection", "Kind", "Part", "Registrar", "inject", "kind_of", "kinds",
           "prepare", "register", "run_parts"]
