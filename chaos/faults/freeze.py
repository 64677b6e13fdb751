"""TRIAL (to be removed): freeze an instance (pause it) until rolled back."""

from __future__ import annotations

from typing import Literal

from chaos.faults.base import register
from chaos.faults.model import ServerFault
from chaos.faults.server import OnInstances


class FreezeFault(ServerFault):
    fault: Literal["freeze"]


register(FreezeFault, OnInstances(lambda stack, name, step: stack.pause(name), undo="resume"))
