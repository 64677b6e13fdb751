"""Bring a stack up (all at once, link proxies as soon as the proxy answers, healthy before returning), attach to one, take it down."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chaos.labels import OWNER_PID, RunIdentity, owner_alive
from chaos.stack import health, registry
from chaos.stack.errors import StackError, StackFileError
from chaos.stack.plan import Plan, ProxyPlan
from chaos.stack.running import Backend, RunningStack
from chaos.stack.spec import Stack, apply_scale, load_stack

BACKENDS = ("docker", "local", "swarm")


def default_backend() -> str:
    """docker wherever an engine answers (swarm when DOCKER_HOST names a swarm manager), else local."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        manager = bool(os.environ.get("DOCKER_HOST")) and bool(client.info().get("Swarm", {}).get("ControlAvailable"))
        client.close()
        return "swarm" if manager else "docker"
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return "local"


def populate(proxy_url: str, proxies: list[ProxyPlan]) -> None:
    """Create every link proxy in one Toxiproxy ``/populate`` call (ours or a real Toxiproxy)."""
    from chaos.proxy.client import ProxyClient, ProxyClientError

    try:
        with ProxyClient(proxy_url) as client:
            client.populate([{"name": p.name, "listen": p.listen, "upstream": p.upstream, "enabled": True} for p in proxies])
    except ProxyClientError as err:
        raise StackError(f"creating the link proxies: {err.one_line()}") from None


def _make_backend(kind: str, stack: Stack, identity: RunIdentity, keep: bool) -> Any:
    if kind == "local":
        from chaos.stack.local import LocalBackend

        return LocalBackend(stack, identity.run_id)
    if kind == "docker":
        from chaos.stack.docker import DockerBackend

        return DockerBackend(stack, identity, keep=keep)
    if kind == "swarm":
        from chaos.stack.swarm import SwarmBackend

        return SwarmBackend(stack, identity, keep=keep)
    raise StackFileError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")


def _with_env(plan: Plan, env: Mapping[str, Mapping[str, Any]] | None) -> Plan:
    """Per-service env overrides (tests and game days), applied after the profile."""
    if not env:
        return plan
    unknown = set(env) - {i.service for i in plan.instances}
    if unknown:
        raise StackFileError(f"env override for unknown service {sorted(unknown)[0]!r}")
    instances = []
    for inst in plan.instances:
        extra = {k: str(v) for k, v in env.get(inst.service, {}).items()}
        instances.append(type(inst)(**{**inst.__dict__, "env": {**inst.env, **extra}}))
    return Plan(profile=plan.profile, instances=instances, proxies=plan.proxies, tiers=plan.tiers)


def start_stack(
    stack: Stack | str | Path,
    backend: str | None = None,
    scale: Mapping[str, int] | None = None,
    profile: str | None = None,
    env: Mapping[str, Mapping[str, Any]] | None = None,
    keep: bool = False,
    identity: RunIdentity | None = None,
) -> RunningStack:
    """Start every instance, create the link proxies, wait until all are healthy; record the run.

    Everything is validated and planned before the first instance starts; on
    any failure what was started is torn down again and the error raised.
    ``keep`` marks a stack that outlives this process (``stack up``).
    """
    if not isinstance(stack, Stack):
        stack = load_stack(stack)
    kind = backend or default_backend()
    spec = apply_scale(stack.spec, scale)
    spec.profile_env(profile)  # unknown profile: error before anything starts
    stack = Stack(spec=spec, path=stack.path)
    identity = identity or RunIdentity()
    impl: Backend = _make_backend(kind, stack, identity, keep)
    plan = _with_env(impl.plan(spec, profile), env)
    impl.prepare(plan)
    proxy_name = f"{spec.proxy.service}-1"
    try:
        # Everything starts at once (the proxy first in line); the link proxies
        # are created as soon as the proxy answers. Services retry their
        # upstreams, so no other order matters, and parallel starts are what
        # makes bring-up as quick as compose's.
        proxy_tier = [i for i in plan.instances if i.service == spec.proxy.service]
        rest = [i for i in plan.instances if i.service != spec.proxy.service]
        if kind == "docker":
            pool = ThreadPoolExecutor(max_workers=8)
            launching = [pool.submit(impl.launch, inst) for inst in proxy_tier + rest]
            try:
                launching[0].result()
                _wait_healthy(stack, impl, proxy_tier)
                host, port = impl.address(proxy_name)
                populate(f"http://{host}:{port}", plan.proxies)
                for future in launching[1:]:
                    future.result()
            finally:
                pool.shutdown(wait=True)
        else:
            # Local processes carry no labels: record each process group as it
            # starts, so a SIGKILL mid bring-up leaves nothing unfindable.
            _save_pending(identity, impl)
            for inst in proxy_tier:
                impl.launch(inst)
                _save_pending(identity, impl)
            _wait_healthy(stack, impl, proxy_tier)
            host, port = impl.address(proxy_name)
            populate(f"http://{host}:{port}", plan.proxies)
            for inst in rest:
                impl.launch(inst)
                _save_pending(identity, impl)
        _wait_healthy(stack, impl, rest)
        host, port = impl.address(proxy_name)
        running = RunningStack(stack, plan, impl, identity.run_id, f"http://{host}:{port}")
        registry.save(
            identity.run_id,
            {**running.record(), "created": time.time(), "scale": dict(scale or {}), "profile": plan.profile, "keep": keep},
        )
        if keep:
            impl.detach()
        return running
    except BaseException:
        impl.teardown()
        registry.remove(identity.run_id)
        raise


def _save_pending(identity: RunIdentity, impl: Backend) -> None:
    registry.save(
        identity.run_id,
        {"pending": True, "backend": impl.kind, "owner": identity.labels(), "created": time.time(), "state": impl.record()},
    )


def end_pending(record: dict[str, Any], dry_run: bool = False) -> str:
    """End the processes of a bring-up whose owner died before finishing; returns what was (or would be) done."""
    from chaos.stack.local import LocalBackend

    run_id = record["run_id"]
    owner = record.get("owner", {})
    if owner_alive(owner):
        raise StackError(f"run {run_id} is still being brought up by pid {owner.get(OWNER_PID, '?')}")
    if record.get("backend") == "swarm":
        from chaos.stack.swarm_clean import end_pending as end_swarm

        line = end_swarm(record, dry_run)
        if not dry_run:
            registry.remove(run_id)  # after the services: a failure leaves the record for the next try
        return line
    procs = {n: p for n, p in record.get("state", {}).get("procs", {}).items() if "pid" in p}
    if not dry_run:
        # Same teardown as a live stack: by process group, pid reuse guarded by start time.
        LocalBackend(None, run_id, procs=procs).teardown()  # type: ignore[arg-type]
        registry.remove(run_id)
    verb = "would end" if dry_run else "ended"
    return f"{run_id}: {verb} {len(procs)} process group(s) of a bring-up whose owner pid {owner.get(OWNER_PID, '?')} died"


def sweep_dead_bringups(dry_run: bool = False) -> list[str]:
    """End the local processes of every bring-up whose owner died mid-way; live ones are never touched."""
    done = []
    for record in registry.records():
        if record.get("pending") and not owner_alive(record.get("owner", {})):
            done.append(end_pending(record, dry_run=dry_run))
    return done


def _wait_healthy(stack: Stack, impl: Backend, members: list[Any]) -> None:
    targets = [
        (inst.name, stack.spec.services[inst.service].health, (lambda n=inst.name: impl.address(n)))
        for inst in members
    ]
    try:
        health.wait_all(targets, alive=impl.exit_reason)
    except TimeoutError as err:
        raise StackError(f"stack {stack.name}: {err}") from None


@contextlib.contextmanager
def bring_up(
    stack: Stack | str | Path,
    backend: str | None = None,
    scale: Mapping[str, int] | None = None,
    profile: str | None = None,
    env: Mapping[str, Mapping[str, Any]] | None = None,
) -> Iterator[RunningStack]:
    """The stack, up and healthy, for the ``with`` block; torn down completely after it."""
    running = start_stack(stack, backend=backend, scale=scale, profile=profile, env=env)
    try:
        yield running
    finally:
        running.down()


def attach_record(run_id: str = "latest") -> RunningStack:
    """A RunningStack for a stack brought up by an earlier command (not torn down on exit)."""
    record = registry.load(run_id)
    if record.get("pending"):
        raise StackError(f"run {record['run_id']} is not up yet (or its owner died mid bring-up: roomquake clean ends it)")
    stack = load_stack(record["stack_file"])
    stack = Stack(spec=apply_scale(stack.spec, record.get("scale")), path=stack.path)
    plan = Plan.from_json(record["plan"])
    if record["backend"] == "local":
        from chaos.stack.local import LocalBackend

        impl: Backend = LocalBackend(stack, record["run_id"], procs=record["state"]["procs"])
    elif record["backend"] == "swarm":
        from chaos.stack.swarm import SwarmBackend

        impl = SwarmBackend.from_record(stack, record["run_id"], record["state"])
    else:
        from chaos.stack.docker import DockerBackend

        impl = DockerBackend.from_record(stack, record["run_id"], record["state"])
    return RunningStack(stack, plan, impl, record["run_id"], record["proxy_url"])


@contextlib.contextmanager
def attach(run_id: str = "latest") -> Iterator[RunningStack]:
    """Game days: drive a stack someone else brought up; it stays up on exit."""
    yield attach_record(run_id)


def down(run_id: str = "latest") -> str:
    """Tear down a recorded stack; returns its run id."""
    if run_id != "latest":
        record = registry.load(run_id)
        if record.get("pending"):  # its owner died mid bring-up (a live one raises)
            end_pending(record)
            return run_id
    running = attach_record(run_id)
    running.down()
    return running.run_id
