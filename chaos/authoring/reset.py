"""Bring a used stack (reused by the pool, or attached) back to a clean start, and check that it is one.

The stack is renewed (chaos.stack.renew): every instance but the
proxy is started afresh with the experiment's scale, profile and env, kept
data emptied, proxies reset and created again. Then the reset is verified,
not assumed: the proxies are exactly the plan's, enabled, without a
toxic; every instance runs and is healthy; every check of the stack file's
``fresh`` section holds (e.g. ``crowd.target == 0``). Anything else raises
``ResetFailed`` with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from chaos.stack.errors import StackError


class ResetFailed(StackError):
    """A reused or attached stack could not be brought back to a clean start."""


def _no_checkpoint() -> None:
    return None


def verify(stack: Any, within: float = 15.0, checkpoint: Callable[[], None] = _no_checkpoint) -> list[str]:
    """Check that ``stack`` looks as if it had served no experiment; returns what was checked."""
    from chaos.experiment.expect import parse_expectation

    with stack.proxy_client() as client:
        proxies = client.proxies()  # each with its toxics: one request
    wanted = {p.name: p for p in stack.links()}
    if set(proxies) != set(wanted):
        extra, missing = sorted(set(proxies) - set(wanted)), sorted(set(wanted) - set(proxies))
        raise ResetFailed(f"reset not verified: proxies differ from the plan (extra {extra}, missing {missing})")
    disabled = sorted(name for name, info in proxies.items() if not info.enabled)
    toxic = sorted(name for name, info in proxies.items() if info.toxics)
    if disabled or toxic:
        raise ResetFailed(f"reset not verified: proxies still disabled {disabled} or with toxics {toxic}")
    astray = sorted(name for name, info in proxies.items() if info.upstream != wanted[name].upstream)
    if astray:
        raise ResetFailed(f"reset not verified: proxies lead elsewhere than the plan says: {', '.join(astray)}")
    down = sorted(i.name for i in stack.instances() if i.state != "running")
    if down:
        raise ResetFailed(f"reset not verified: not running after the reset: {', '.join(down)}")
    deadline = time.monotonic() + within

    def holds(check: Any) -> str:
        expect = parse_expectation(check.expect)
        while True:
            value = stack.probe(check.probe)
            if expect.holds(value):
                return f"{check.probe} {check.expect}"
            if time.monotonic() > deadline:
                raise ResetFailed(f"reset not verified: {check.probe} is {value!r}, a fresh stack shows {check.expect}")
            time.sleep(0.2)

    # The checks side by side (each reads its own instances); the checkpoint between waits, in this thread.
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(stack.spec.fresh)))) as pool:
        futures = [pool.submit(holds, check) for check in stack.spec.fresh]
        while not all(f.done() for f in futures):
            checkpoint()
            wait(futures, timeout=0.1, return_when=FIRST_EXCEPTION)
            for f in futures:
                failed = f.exception() if f.done() else None
                if failed is not None:
                    raise failed
        checked = [f.result() for f in futures]
    return [f"reset verified: {len(proxies)} proxies clean, {len(stack.instances())} instances running"
            + (f"; {', '.join(checked)}" if checked else "")]


def reset(
    stack: Any,
    scale: Mapping[str, int] | None = None,
    profile: str | None = None,
    env: Mapping[str, Mapping[str, Any]] | None = None,
    checkpoint: Callable[[], None] = _no_checkpoint,
) -> list[str]:
    """Renew ``stack`` (a chaos.stack.RunningStack) for an experiment and verify it; returns what was done."""
    from chaos.stack.renew import renew

    try:
        done = renew(stack, scale=scale, profile=profile, env=env, checkpoint=checkpoint)
    except StackError as err:
        raise ResetFailed(f"reset failed: {err.one_line()}") from None
    return done + verify(stack, checkpoint=checkpoint)
