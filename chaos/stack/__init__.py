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

if TYPE_CHECKING:
    from chaos.stack.bringup import attach, bring_up, default_backend, down, start_stack
    from chaos.stack.running import Instance, LinkProxy, RunningStack
    from chaos.stack.spec import Stack, StackSpec, apply_scale, load_stack, parse_scale

_HOMES = {
    "attach": "bringup", "bring_up": "bringup", "default_backend": "bringup", "down": "bringup", "start_stack": "bringup",
    "Instance": "running", "LinkProxy": "running", "RunningStack": "running",
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
