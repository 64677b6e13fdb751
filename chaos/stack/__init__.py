"""Stacks: the stack file model, planning, backends and the running-stack API.

```python
from chaos.stack import bring_up
with bring_up("docker/stack.yaml", backend="local", scale={"edge": 3}, profile="ci") as stack:
    stack.load("start", room="launch", listeners=50)
    stack.kill(stack.select("hosting", room="launch")[0])
```
"""

from chaos.stack.bringup import attach, bring_up, default_backend, down, start_stack
from chaos.stack.running import Instance, LinkProxy, RunningStack
from chaos.stack.spec import Stack, StackSpec, apply_scale, load_stack, parse_scale

__all__ = [
    "Instance",
    "LinkProxy",
    "RunningStack",
    "Stack",
    "StackSpec",
    "apply_scale",
    "attach",
    "bring_up",
    "default_backend",
    "down",
    "load_stack",
    "parse_scale",
    "start_stack",
]
