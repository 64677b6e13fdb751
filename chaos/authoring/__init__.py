"""Driving roomquake from Python: a pool of reusable stacks, faults as context managers, waiting on probes.

Used by the pytest plugin's fixtures; usable from any script::

    from chaos.authoring import Faults, StackPool
    with StackPool(backend="local") as pool:
        stack = pool.handle(scale={"edge": 3})
        stack.start_load(listeners=30)
        stack.wait_for("room.state", "live", within=10)
        with Faults(stack).kill(hosting=stack.room) as hit:
            stack.wait_for("room.edge", f"!= {hit.names[0]}", within=10)
"""

from chaos.authoring.faults import Faults, Injected, RollbackFailed
from chaos.authoring.handle import StackHandle
from chaos.authoring.pool import Lease, StackKey, StackPool

__all__ = ["Faults", "Injected", "Lease", "RollbackFailed", "StackHandle", "StackKey", "StackPool"]
