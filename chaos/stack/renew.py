"""Renew a reused or attached stack for an experiment: every instance but the proxy started afresh."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaos.stack.bringup import _no_checkpoint, _wait_futures, _wait_healthy, _with_env, populate
from chaos.stack.errors import StackError
from chaos.stack.plan import InstancePlan, Plan
from chaos.stack.local import LocalBackend
from chaos.stack.running import Backend, RunningStack
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
    stack file, the proxies are reset (and created again when the new plan
    has other ones; with the same scale, instances keep their ports and the
    link proxies stay).
    This is also how an experiment's scale and env reach a stack that was
    brought up with others. Returns what was done, one line each.
    """
    base = load_stack(running.stack.path)
    spec = apply_scale(base.spec, scale)
    spec.profile_env(profile)
    stack = Stack(spec=spec, path=base.path)
    impl = running.backend
    proxy_name = f"{spec.proxy.service}-1"
    if isinstance(impl, LocalBackend):  # the same ports where the instances and proxies are the same ones
        fresh = _with_env(impl.plan(spec, profile, **running.secrets, like=running.plan), env)
    else:
        fresh = _with_env(impl.plan(spec, profile, **running.secrets), env)
    kept_proxy = running.plan.instance(proxy_name)
    plan = Plan(profile=fresh.profile, instances=[kept_proxy if i.name == proxy_name else i for i in fresh.instances],
                proxies=fresh.proxies, tiers=fresh.tiers)
    old = [i.name for i in running.plan.instances if i.name != proxy_name]
    # A container whose instance is planned exactly as before (command and env) and runs under the fork
    # server gets a fresh instance in place (docker); every other one is removed and launched anew.
    before = {i.name: i for i in running.plan.instances}
    in_place = [i.name for i in fresh.instances if i.name != proxy_name and i.name in before
                and (before[i.name].command, before[i.name].env) == (i.command, i.env)
                and impl.respawnable(i.name)]
    # Link proxies the new plan has unchanged (the same scale) stay, reset: no toxic, all enabled.
    same_proxies = [(p.name, p.listen, p.upstream) for p in plan.proxies] == \
                   [(p.name, p.listen, p.upstream) for p in running.plan.proxies]
    with running.proxy_client() as client:
        toxics = sum(len(info.toxics) for info in client.proxies().values())
        client.reset()
        if not same_proxies:
            for name in client.proxies():
                client.delete(name)
    if not same_proxies:
        populate(running.proxy_url, plan.proxies, running.proxy_token)
    impl.stack = stack  # launches read the services from it
    rest = [i for i in plan.instances if i.name != proxy_name]
    respawned: set[str] = set()
    try:
        if isinstance(impl, LocalBackend):
            impl.remove_all(old)  # all at once (SIGKILL: their data goes too)
            running.adopt(stack, plan)
            running.persist()
            checkpoint()
            impl.checkpoint = checkpoint
            impl.launch_all(rest)  # forked: each in the births file before it runs
        else:
            running.adopt(stack, plan)
            respawned = _replace_containers(impl, rest, [n for n in old if n not in {i.name for i in rest}],
                                            set(in_place), checkpoint)
        running.meta.update(scale=dict(scale or {}), profile=plan.profile)
        running.persist()
        _wait_healthy(stack, impl, rest, checkpoint, running.secrets)
    finally:
        running.persist()
        if running.attached or running.meta.get("keep"):
            # Not ours to end: what was launched for a stack brought up by
            # another command must outlive this process, as that stack does.
            impl.detach()
    gone = len(old) - len(respawned)
    env_text = "; ".join(f"{svc}: {', '.join(f'{k}={v}' for k, v in vars_.items())}" for svc, vars_ in (env or {}).items())
    return [
        f"proxies reset ({toxics} toxic(s) removed, all enabled)"
        + (f", {len(plan.proxies)} link proxies kept" if same_proxies else f" and created again: {len(plan.proxies)} link proxies"),
        f"every instance but {proxy_name} started afresh, kept data emptied: {gone} removed, "
        f"{len(rest) - len(respawned)} launched" + (f", {len(respawned)} forked anew in their containers" if respawned else ""),
        f"applied: scale {_scale_text(spec)}, profile {plan.profile}, env {env_text or 'as the stack file says'}",
    ]


def _replace_containers(impl: Backend, instances: list[InstancePlan], dropped: list[str], in_place: set[str],
                        checkpoint: Callable[[], None]) -> set[str]:
    """Every container at once: a fresh instance in place where it can (respawn), else removed and launched anew.

    Returns the names respawned in place; a respawn that is not confirmed
    falls back to a new container.
    """
    respawned: set[str] = set()

    def renew_one(inst: InstancePlan) -> None:
        if inst.name in in_place:
            try:
                impl.respawn(inst.name)
                respawned.add(inst.name)
                return
            except StackError:
                pass  # replaced by a new container instead
        impl.remove(inst.name)
        impl.launch(inst)

    with ThreadPoolExecutor(max_workers=max(1, min(16, len(instances) + len(dropped)))) as pool:
        _wait_futures([pool.submit(renew_one, inst) for inst in instances]
                      + [pool.submit(impl.remove, name) for name in dropped], checkpoint)
    return respawned


def _scale_text(spec: Any) -> str:
    return ", ".join(f"{name}={svc.replicas}" for name, svc in spec.services.items())


