"""Stacks: the stack file model, planning, backends and the running-stack API.

```python
from chaos.stack import bring_up
with bring_up("docker/stack.yaml", backend="local", scale={"edge": 3}, profile="ci") as stack:
    stack.load("start", room="launch", listeners=50)
    stack.kill(stack.select("hosting", room="launch")[0])
```

Names are imported on first use, so reading a stack file (``chaos.stack.spec``)
does not load the backends, health checks and HTTP clients (CLI start-up).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # "x as x": the names this package exports, for type checkers (loaded lazily below)
    from chaos.stack.bringup import attach as attach, bring_up as bring_up, default_backend as default_backend
    from chaos.stack.bringup import start_stack as start_stack
    from chaos.stack.sweep import down as down
    from chaos.stack.contract import Instance as Instance, LinkProxy as LinkProxy, LiveStack as LiveStack
    from chaos.stack.running import RunningStack as RunningStack
    from chaos.stack.spec import Stack as Stack, StackSpec as StackSpec, apply_scale as apply_scale
    from chaos.stack.spec import load_stack as load_stack, parse_scale as parse_scale

_HOMES = {
    "attach": "bringup", "bring_up": "bringup", "default_backend": "bringup", "down": "sweep", "start_stack": "bringup",
    "Instance": "contract", "LinkProxy": "contract", "LiveStack": "contract", "RunningStack": "running",
    "Stack": "spec", "StackSpec": "spec", "apply_scale": "spec", "load_stack": "spec", "parse_scale": "spec",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'chaos.stack' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"chaos.stack.{home}"), name)
    globals()[name] = value
    return value
