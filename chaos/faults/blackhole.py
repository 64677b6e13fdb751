"""TRIAL (to be removed): a link whose data goes nowhere (a timeout toxic that never closes) until rolled back."""

from __future__ import annotations

from typing import Literal

from chaos.faults.base import register
from chaos.faults.model import LinkFault
from chaos.faults.network import Toxic


class BlackholeFault(LinkFault):
    fault: Literal["blackhole"]


register(BlackholeFault, Toxic("timeout", lambda step: {"timeout": 0}))
