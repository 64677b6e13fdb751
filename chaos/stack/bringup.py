"""Bring a stack up (all at once, link proxies as soon as the proxy answers, healthy before returning), attach to one, take it down."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chaos.labels import RunIdentity
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


def populate(proxy_url: str, proxies: list[ProxyPlan], token: str | None = None) -> None:
    """Create every link proxy in one Toxiproxy ``/populate`` call (ours or a real Toxiproxy)."""
    from chaos.proxy.client import ProxyClientError
    from chaos.stack.access import proxy_client

    try:
        with proxy_client(proxy_url, token) as client:
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


def new_secrets() -> dict[str, str]:
    """Per-run secrets: ``{secret}`` (the state store's password) and the proxy API token."""
    return {"secret": secrets.token_urlsafe(18), "proxy_token": secrets.token_urlsafe(24)}


def _no_checkpoint() -> None:
    return None


class Steps:
    """When each bring-up step ended, in seconds from the start (kept in the run record as ``timings``)."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.marks: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        self.marks[name] = round(time.monotonic() - self.began, 3)


def start_stack(
    stack: Stack | str | Path,
    backend: str | None = None,
    scale: Mapping[str, int] | None = None,
    profile: str | None = None,
    env: Mapping[str, Mapping[str, Any]] | None = None,
    keep: bool = False,
    identity: RunIdentity | None = None,
    checkpoint: Callable[[], None] = _no_checkpoint,
) -> RunningStack:
    """Start every instance, create the link proxies, wait until all are healthy; record the run.

    Everything is validated and planned before the first resource exists; the
    run is in the registry (``pending``) before its first resource is
    created, and every resource is created inside the ``try`` that removes it
    again on any failure. ``checkpoint()`` is called between steps and while
    waiting; whatever it raises (a Ctrl-C the caller noted) tears down what
    was started and propagates. ``keep`` marks a stack that outlives this
    process (``stack up``).
    """
    if not isinstance(stack, Stack):
        stack = load_stack(stack)
    kind = backend or default_backend()
    spec = apply_scale(stack.spec, scale)
    spec.profile_env(profile)  # unknown profile: error before anything starts
    stack = Stack(spec=spec, path=stack.path)
    if kind == "local":
        _refuse_docker_only(spec)
    identity = identity or RunIdentity()
    run_secrets = new_secrets()
    impl: Backend = _make_backend(kind, stack, identity, keep)
    plan = _with_env(impl.plan(spec, profile, **run_secrets), env)
    proxy_name = f"{spec.proxy.service}-1"
    steps = Steps()
    meta = {"created": time.time(), "scale": dict(scale or {}), "profile": plan.profile, "keep": keep,
            "owner": identity.labels(), "secrets": run_secrets, "timings": steps.marks}
    try:
        _save_pending(identity, impl, meta)
        checkpoint()
        impl.prepare(plan)  # the docker run network is created here: inside the scope that removes it
        steps("prepared")
        _save_pending(identity, impl, meta)
        # Everything starts at once (the proxy first in line); the link proxies
        # are created as soon as the proxy answers. Services retry their
        # upstreams, so no other order matters, and parallel starts are what
        # makes bring-up as quick as compose's.
        proxy_tier = [i for i in plan.instances if i.service == spec.proxy.service]
        rest = [i for i in plan.instances if i.service != spec.proxy.service]
        token = run_secrets["proxy_token"] if spec.proxy.token_env else None
        if kind in ("docker", "swarm"):  # labelled resources: a killed bring-up is found by its labels
            _launch_docker(stack, impl, plan, proxy_tier, rest, token, checkpoint, run_secrets, steps)
            _wait_healthy(stack, impl, rest, checkpoint, run_secrets)
        else:
            _launch_local(stack, impl, plan, token, checkpoint, run_secrets, lambda: _save_pending(identity, impl, meta),
                          steps)
        steps("healthy")
        host, port = impl.address(proxy_name)
        running = RunningStack(stack, plan, impl, identity.run_id, f"http://{host}:{port}",
                               secrets=run_secrets, proxy_token=token)
        running.meta = meta
        running.registered = True
        running.persist()
        if hasattr(impl, "record_now"):
            impl.record_now = running.persist  # a process the backend starts later is recorded by the stack
        if keep:
            impl.detach()
        return running
    except BaseException:
        impl.teardown()
        registry.remove(identity.run_id)
        raise


def _wait_futures(futures: list[Any], checkpoint: Callable[[], None]) -> None:
    """Wait for launches in this (the main) thread, passing checkpoints, and raise the first failure."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    pending = set(futures)
    while pending:
        checkpoint()
        done, pending = wait(pending, timeout=0.1, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()


def _launch_docker(stack: Stack, impl: Backend, plan: Plan, proxy_tier: list[Any], rest: list[Any],
                   token: str | None, checkpoint: Callable[[], None], run_secrets: Mapping[str, str],
                   steps: Steps) -> None:
    proxy_name = proxy_tier[0].name
    # One worker per container (up to 16): the engine works on every start at once.
    pool = ThreadPoolExecutor(max_workers=max(1, min(16, len(proxy_tier) + len(rest))))
    first, later = dependency_waves(stack.spec, rest)  # no depends_on in the stack file: all at once
    launching = [pool.submit(impl.launch, inst) for inst in proxy_tier + first]
    try:
        _wait_futures(launching[:1], checkpoint)
        steps("proxy started")
        _wait_healthy(stack, impl, proxy_tier, checkpoint, run_secrets)
        steps("proxy healthy")
        host, port = impl.address(proxy_name)
        populate(f"http://{host}:{port}", plan.proxies, token)
        steps("proxies created")
        _wait_futures(launching[1:], checkpoint)
        for healthy_first, wave in later:
            _wait_healthy(stack, impl, healthy_first, checkpoint, run_secrets)
            _wait_futures([pool.submit(impl.launch, inst) for inst in wave], checkpoint)
        steps("all started")
    finally:
        # Launches not begun yet are dropped; those under way finish, so the
        # teardown that follows a failure sees every container they made.
        pool.shutdown(wait=True, cancel_futures=True)


def dependency_waves(spec: Any, instances: list[Any]) -> tuple[list[Any], list[tuple[list[Any], list[Any]]]]:
    """Start order from the services' ``depends_on``: the first wave, then (instances to be healthy first, wave) pairs.

    A service starts once every service it depends on has started, and once
    those it depends on as ``healthy`` pass their health check.
    """
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in level:
            deps = spec.services[name].depends_on
            level[name] = 1 + max((depth(d) for d in deps), default=-1)
        return level[name]

    waves: dict[int, list[Any]] = {}
    for inst in instances:
        waves.setdefault(depth(inst.service), []).append(inst)
    ordered = [waves[k] for k in sorted(waves)]
    if not ordered:
        return [], []
    later = []
    for wave in ordered[1:]:
        healthy = {d for inst in wave for d, how in spec.services[inst.service].depends_on.items() if how == "healthy"}
        later.append(([i for i in instances if i.service in healthy], wave))
    return ordered[0], later


def _refuse_docker_only(spec: Any) -> None:
    """What only the container backends (docker, swarm) can run: images from build contexts, the image's own
    command, container options."""
    for name, svc in spec.services.items():
        image = spec.images[svc.image]
        why = ("its image is built from a build context" if image.context else
               "it runs its image's own command" if not svc.command else
               "it has container options (entrypoint, mounts, aliases, user)" if svc.container else None)
        if why:
            raise StackFileError(f"the local backend cannot run service {name!r} of stack {spec.name}: {why}; "
                                 "use --backend docker or swarm")


def _launch_local(stack: Stack, impl: Any, plan: Plan, token: str | None, checkpoint: Callable[[], None],
                  run_secrets: Mapping[str, str], record: Callable[[], None], steps: Steps) -> None:
    """The proxy and the servers nothing else serves (the state store) first, then the rest, all forked.

    Each batch is in the run record before the next step (the fork server's
    births file has each process before it runs); the link proxies are
    created as soon as the proxy is healthy, before the clients start.
    """
    import chaos.proxy.client  # noqa: F401 - loaded while the fork server preloads: populate needs it soon

    impl.checkpoint = checkpoint
    impl.record_now = record
    first_services = set(plan.tiers[0] + (plan.tiers[1] if len(plan.tiers) > 1 else []))
    first = [i for i in plan.instances if i.service in first_services]
    rest = [i for i in plan.instances if i.service not in first_services]
    proxy_tier = [i for i in plan.instances if i.service == stack.spec.proxy.service]
    checkpoint()
    impl.launch_all(first)
    steps("first started")
    record()
    _wait_healthy(stack, impl, proxy_tier, checkpoint, run_secrets)
    steps("proxy healthy")
    host, port = impl.address(proxy_tier[0].name)
    populate(f"http://{host}:{port}", plan.proxies, token)
    steps("proxies created")
    checkpoint()
    impl.launch_all(rest)
    steps("all started")
    record()
    _wait_healthy(stack, impl, [i for i in plan.instances if i.service != stack.spec.proxy.service], checkpoint,
                  run_secrets)


def _save_pending(identity: RunIdentity, impl: Backend, meta: dict[str, Any]) -> None:
    registry.save(identity.run_id, {**meta, "pending": True, "backend": impl.kind, "state": impl.record()})


def _address_of(impl: Backend, name: str, listens: bool) -> Callable[[], tuple[str, int]]:
    """How a health check finds the instance (a service on no port, health kind none, has no address)."""
    if not listens:
        return lambda: ("", 0)
    return lambda: impl.address(name)


def _wait_healthy(stack: Stack, impl: Backend, members: list[Any], checkpoint: Callable[[], None] = _no_checkpoint,
                  secrets: Mapping[str, str] | None = None) -> None:
    targets = [
        (inst.name, stack.spec.services[inst.service].health, _address_of(impl, inst.name, inst.port is not None))
        for inst in members
    ]
    # A backend that hears instances say they are ready (the local fork server) checks them at that instant.
    readiness = getattr(impl, "readiness", None)
    try:
        health.wait_all(targets, alive=impl.exit_reason, checkpoint=checkpoint, secrets=secrets,
                        wake=readiness() if readiness else None, timeout_scale=impl.health_timeout_scale)
    except health.NotHealthy as err:
        tail = impl.log_tail(err.name)
        raise StackError(f"stack {stack.name}: {err}" + (f"; its log: {tail}" if tail else "")) from None
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
    return from_record(record)


def from_record(record: dict[str, Any]) -> RunningStack:
    """A RunningStack for a finished registry record."""
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
    run_secrets = dict(record.get("secrets") or {})
    token = run_secrets.get("proxy_token") if stack.spec.proxy.token_env else None
    running = RunningStack(stack, plan, impl, record["run_id"], record["proxy_url"], secrets=run_secrets, proxy_token=token)
    running.meta = {k: v for k, v in record.items() if k not in ("run_id", "saved", *running.record())}
    running.registered = True
    running.attached = True
    if hasattr(impl, "record_now"):
        impl.record_now = running.persist
    return running


@contextlib.contextmanager
def attach(run_id: str = "latest") -> Iterator[RunningStack]:
    """Game days: drive a stack someone else brought up; it stays up on exit."""
    yield attach_record(run_id)
