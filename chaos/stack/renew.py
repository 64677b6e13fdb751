"""Renew a reused or attached stack for an experiment: every instance but the proxy started afresh."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaos.stack.bringup import _no_checkpoint, _wait_futures, _wait_healthy, _with_env, populate
from chaos.stack.plan import Plan
from chaos.stack.running import RunningStack
from chaos.stack.spec import Stack, apply_scale, load_stack


def renew(
    running: RunningStack,
    scale: Mapping[str, int] | None = None,
    profile: str | None = None,
    env: Mapping[str, Mapping[str, Any]] | None = None,
    checkpoint: Callable[[], None] = _no_checkpoint,
) -> list[str]:
    """Start every instance but the proxy afresh, as planned for ``scale``, ``profile`` and ``env``.

    What an earlier run leaves in a stack lives in its processes (rooms,
    counters, listeners, leases) and its kept data; so a reused or attached
    stack keeps only its proxy process, network and images: every other
    instance is removed (with its kept data) and launched new from the
    stack file, the proxies are reset and created again for the new plan.
    This is also how an experiment's scale and env reach a stack that was
    brought up with others. Returns what was done, one line each.
    """
    base = load_stack(running.stack.path)
    spec = apply_scale(base.spec, scale)
    spec.profile_env(profile)
    stack = Stack(spec=spec, path=base.path)
    impl = running.backend
    proxy_name = f"{spec.proxy.service}-1"
    fresh = _with_env(impl.plan(spec, profile, **running.secrets), env)
    kept_proxy = running.plan.instance(proxy_name)
    plan = Plan(profile=fresh.profile, instances=[kept_proxy if i.name == proxy_name else i for i in fresh.instances],
                proxies=fresh.proxies, tiers=fresh.tiers)
    old = [i.name for i in running.plan.instances if i.name != proxy_name]
    with running.proxy_client() as client:
        toxics = sum(len(client.toxics(name)) for name in client.proxies())
        client.reset()
        for name in client.proxies():
            client.delete(name)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(impl.remove, old))
    impl.stack = stack  # launches read the services from it
    running.adopt(stack, plan)
    running.meta.update(scale=dict(scale or {}), profile=plan.profile)
    running.persist()
    rest = [i for i in plan.instances if i.name != proxy_name]
    try:
        populate(running.proxy_url, plan.proxies, running.proxy_token)
        if impl.kind in ("docker", "swarm"):
            with ThreadPoolExecutor(max_workers=8) as pool:
                _wait_futures([pool.submit(impl.launch, inst) for inst in rest], checkpoint)
        else:
            for inst in rest:
                checkpoint()
                impl.launch(inst)
                running.persist()  # each new process group is findable at once
        _wait_healthy(stack, impl, rest, checkpoint, running.secrets)
    finally:
        running.persist()
        if running.attached or running.meta.get("keep"):
            # Not ours to end: what was launched for a stack brought up by
            # another command must outlive this process, as that stack does.
            impl.detach()
    env_text = "; ".join(f"{svc}: {', '.join(f'{k}={v}' for k, v in vars_.items())}" for svc, vars_ in (env or {}).items())
    return [
        f"proxies reset ({toxics} toxic(s) removed, all enabled) and created again: {len(plan.proxies)} link proxies",
        f"every instance but {proxy_name} started afresh, kept data emptied: {len(old)} removed, {len(rest)} launched",
        f"applied: scale {_scale_text(spec)}, profile {plan.profile}, env {env_text or 'as the stack file says'}",
    ]


def _scale_text(spec: Any) -> str:
    return ", ".join(f"{name}={svc.replicas}" for name, svc in spec.services.items())


