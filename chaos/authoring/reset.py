"""Bring a used stack back to a clean start between experiments, without a cold start.

Proxies: every toxic removed, every proxy enabled. Scale: every instance
running again (started if gone, resumed if paused). Crowd: the load
generators (services the stack's load actions address by service, not by
a fixed instance) are restarted, so their listeners are gone and their
counters start at zero.
"""

from __future__ import annotations

from typing import Any

from chaos.stack import health
from chaos.stack.errors import StackError


def load_generators(stack: Any) -> list[str]:
    services: set[str] = set()
    for action in stack.spec.load.values():
        for step in action.steps:
            if step.service and not step.instance:
                services.add(step.service)
    return sorted(services)


def _wait_healthy(stack: Any, names: list[str]) -> None:
    if not names:
        return
    service = {i.name: i.service for i in stack.instances()}
    targets = [(n, stack.spec.services[service[n]].health, (lambda n=n: stack.address(n))) for n in names]
    try:
        health.wait_all(targets, alive=stack.backend.exit_reason)
    except TimeoutError as err:
        raise StackError(f"stack {stack.spec.name}: after reset: {err}") from None


def reset(stack: Any) -> list[str]:
    """Reset ``stack`` (a chaos.stack.RunningStack); returns what was done, one line each."""

    done = []
    with stack.proxy_client() as proxy:
        proxy.reset()
    done.append("proxies reset (toxics removed, all enabled)")
    woken = []
    for inst in stack.instances():
        if inst.state == "paused":
            stack.resume(inst.name)
            woken.append(inst.name)
        elif inst.state != "running":
            stack.start(inst.name)
            woken.append(inst.name)
    if woken:
        done.append(f"started again: {', '.join(woken)}")
    crowd = [i.name for s in load_generators(stack) for i in stack.instances(s)]
    for name in crowd:
        stack.restart(name)
    if crowd:
        done.append(f"restarted load generators: {', '.join(crowd)}")
    _wait_healthy(stack, sorted(set(woken + crowd)))
    return done
