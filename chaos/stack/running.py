"""RunningStack: one API over a brought-up stack, whatever the backend.

The runner and the tests drive instances (kill, pause, ...), read probes,
pick targets with selectors and drive load through this object; the
backend (local processes or Docker containers) does the work.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable

from chaos.probes import fill
from chaos.stack import probes as probe_eval
from chaos.stack.contract import Instance, LinkProxy, ProbeValue
from chaos.stack.errors import StackError, StackFileError, Unsupported
from chaos.stack.plan import InstancePlan, Plan
from chaos.stack.spec import LoadStep, Stack

if TYPE_CHECKING:
    import docker

    from chaos.probes import ProbeSpec
    from chaos.proxy.client import ProxyClient
    from chaos.stack.spec import StackSpec

__all__ = ["Backend", "Instance", "LinkProxy", "RunningStack"]


class Backend(ABC):
    """What a backend does for one run. Instance names are the plan's (``edge-2``)."""

    kind: str = ""
    stack: Stack  # the stack file it runs (renew hands it the renewed one: launches read the services from it)
    health_timeout_scale: float = 1.0  # bring-up waits this many times each health spec's timeout_s

    @abstractmethod
    def plan(self, spec: StackSpec, profile: str | None, secret: str = "", proxy_token: str = "") -> Plan:
        """Instances, ports and proxies as this backend addresses them (secrets: see ``make_plan``)."""

    @abstractmethod
    def prepare(self, plan: Plan) -> None:
        """Everything that can fail before the first instance starts (programs, images, network)."""

    @abstractmethod
    def launch(self, inst: InstancePlan) -> None: ...

    @abstractmethod
    def state(self, name: str) -> str: ...

    @abstractmethod
    def address(self, name: str) -> tuple[str, int]: ...

    @abstractmethod
    def kill(self, name: str) -> None: ...

    @abstractmethod
    def stop(self, name: str) -> None: ...

    @abstractmethod
    def start(self, name: str) -> None: ...

    @abstractmethod
    def pause(self, name: str) -> None: ...

    @abstractmethod
    def resume(self, name: str) -> None: ...

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def respawnable(self, name: str) -> bool:
        """Whether ``respawn`` can give the instance a fresh process in place (default: never)."""
        return False

    def respawn(self, name: str) -> None:
        """A fresh instance in place, keeping its container or slot (see ``respawnable``)."""
        raise NotImplementedError(f"the {self.kind or type(self).__name__} backend cannot respawn instances")

    def remove(self, name: str) -> None:
        """End the instance and forget it, with its kept data (``renew`` launches its successor)."""
        raise NotImplementedError(f"the {self.kind or type(self).__name__} backend cannot replace instances")

    @abstractmethod
    def disconnect(self, name: str) -> None: ...

    @abstractmethod
    def reconnect(self, name: str) -> None: ...

    @abstractmethod
    def squeeze(self, name: str, cpus: float | None = None, memory_mb: int | None = None) -> None: ...

    @abstractmethod
    def unsqueeze(self, name: str) -> None: ...

    @abstractmethod
    def image_ids(self) -> dict[str, str]: ...

    def detach(self) -> None:
        """Let the instances outlive this process (``stack up``); default: nothing to do."""

    def exit_reason(self, name: str) -> str | None:
        """Why an instance is gone (for bring-up errors), None while it runs."""
        return None if self.state(name) in ("running", "paused") else "exited"

    def log_text(self, name: str, lines: int) -> str:
        """The last ``lines`` lines an instance wrote (stdout and stderr); "" when the backend keeps none."""
        return ""

    def log_tail(self, name: str, lines: int = 5) -> str:
        """The last lines on one line, for error messages; never raises (logs are a courtesy there)."""
        try:
            text = self.log_text(name, lines)
        except Exception:  # noqa: BLE001
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def container_of(self, name: str) -> tuple[docker.DockerClient, str] | None:
        """The engine and the running container of an instance, for what enters its network
        namespace (packet faults); None when it is not running."""
        raise Unsupported(f"{name}: the {self.kind or type(self).__name__} backend runs processes without network "
                          "namespaces of their own; packet faults need --backend docker or swarm")

    @abstractmethod
    def teardown(self) -> None: ...

    def leftovers(self) -> list[str]:
        """What of this run still exists (after ``teardown``: should be nothing), one phrase each."""
        raise NotImplementedError(f"the {self.kind or type(self).__name__} backend cannot list what a run left")

    @abstractmethod
    def record(self) -> dict[str, Any]: ...


class RunningStack:
    """A brought-up stack, for every backend: implements ``chaos.stack.contract.LiveStack``."""

    def __init__(self, stack: Stack, plan: Plan, backend: Backend, run_id: str, proxy_url: str,
                 secrets: dict[str, str] | None = None, proxy_token: str | None = None) -> None:
        self.stack = stack
        self.spec = stack.spec
        self.plan = plan
        self.backend = backend
        self.run_id = run_id
        self.proxy_url = proxy_url
        self.secrets = dict(secrets or {})  # kept in the run registry only, never journaled
        self.proxy_token = proxy_token  # None: the proxy API takes no token (Toxiproxy's default)
        self.meta: dict[str, Any] = {}  # the registry record's other fields (owner, keep, scale, ...)
        self.registered = False  # in the run registry: every change of a process is written there
        self.attached = False  # brought up by another command (attach): what we launch for it must outlive us
        self.torn_down = False
        self.checkpoint: Callable[[], None] = lambda: None  # called while waiting; may raise (a noted Ctrl-C)
        self._names = {i.name: i for i in plan.instances}

    def adopt(self, stack: Stack, plan: Plan) -> None:
        """Take a new plan (``renew``): instances, proxies and the scaled spec."""
        self.stack = stack
        self.spec = stack.spec
        self.plan = plan
        self._names = {i.name: i for i in plan.instances}

    def proxy_client(self, **options: Any) -> ProxyClient:
        """A Toxiproxy client for this stack's proxy API, with the run's token."""
        from chaos.stack.access import proxy_client

        return proxy_client(self.proxy_url, self.proxy_token, **options)

    def persist(self) -> None:
        """Write the run's record again (a restarted local process has a new pid: it must be findable at once)."""
        if not self.registered:
            return
        from chaos.stack import registry

        registry.save(self.run_id, {**self.meta, **self.record()})

    # --- what is there ---------------------------------------------------------

    @property
    def backend_kind(self) -> str:
        return self.backend.kind

    @property
    def automation(self) -> str | None:
        return self.spec.automation.service if self.spec.automation else None

    def _known(self, name: str) -> InstancePlan:
        try:
            return self._names[name]
        except KeyError:
            raise StackError(f"no instance {name!r} in this stack (instances: {', '.join(self._names)})") from None

    def instances(self, service: str | None = None) -> list[Instance]:
        if service is not None and service not in self.spec.services:
            raise StackError(f"no service {service!r} in this stack (services: {', '.join(self.spec.services)})")
        return [
            Instance(i.name, i.service, i.replica, self.backend.state(i.name))
            for i in self.plan.instances
            if service is None or i.service == service
        ]

    def address(self, instance: str) -> tuple[str, int]:
        self._known(instance)
        return self.backend.address(instance)

    def healthy(self, instance: str, timeout: float = 1.0) -> bool:
        """One health check of ``instance`` as its service declares it, with the run's secrets."""
        from chaos.stack import health

        spec = self.spec.services[self._known(instance).service].health
        if spec.kind == "none":  # a service on no port: healthy while it runs
            return self.backend.state(instance) == "running"
        host, port = self.address(instance)
        return health.check(spec, host, port, timeout=timeout, password=health.fill_secret(spec.password, self.secrets),
                            bearer=health.fill_secret(spec.bearer, self.secrets))

    def links(self) -> list[LinkProxy]:
        return [LinkProxy(p.name, p.link, p.listen, p.upstream) for p in self.plan.proxies]

    def image_ids(self) -> dict[str, str]:
        return self.backend.image_ids()

    def log_text(self, instance: str, lines: int) -> str:
        """The last ``lines`` lines the instance wrote; "" when they cannot be read (gone, no logs kept)."""
        try:
            return self.backend.log_text(instance, lines)
        except Exception:  # noqa: BLE001 - logs are kept as a courtesy, never at the cost of the run
            return ""

    def container_of(self, instance: str) -> tuple[docker.DockerClient, str] | None:
        return self.backend.container_of(instance)

    # --- server loss -----------------------------------------------------------

    def kill(self, instance: str) -> None:
        self._known(instance)
        self.backend.kill(instance)

    def stop(self, instance: str) -> None:
        self._known(instance)
        self.backend.stop(instance)

    def start(self, instance: str) -> None:
        self._known(instance)
        try:
            self.backend.start(instance)
        finally:
            self.persist()

    def restart(self, instance: str) -> None:
        self._known(instance)
        try:
            self.backend.restart(instance)
        finally:
            self.persist()

    def pause(self, instance: str) -> None:
        self._known(instance)
        self.backend.pause(instance)

    def resume(self, instance: str) -> None:
        self._known(instance)
        self.backend.resume(instance)

    def disconnect(self, instance: str) -> None:
        self._known(instance)
        self.backend.disconnect(instance)

    def reconnect(self, instance: str) -> None:
        self._known(instance)
        self.backend.reconnect(instance)

    def squeeze(self, instance: str, cpus: float | None = None, memory_mb: int | None = None) -> None:
        self._known(instance)
        self.backend.squeeze(instance, cpus=cpus, memory_mb=memory_mb)

    def unsqueeze(self, instance: str) -> None:
        self._known(instance)
        self.backend.unsqueeze(instance)

    # --- domain: probes, selectors, load ---------------------------------------

    def probe(self, name: str, **params: Any) -> ProbeValue:
        try:
            spec = self.spec.probes[name]
        except KeyError:
            raise StackFileError(f"unknown probe {name!r}; the stack offers {', '.join(sorted(self.spec.probes))}") from None
        return probe_eval.evaluate(spec, self, params)

    def probe_spec(self, spec: ProbeSpec, **params: Any) -> ProbeValue:
        """Evaluate an inline probe spec (an experiment's own, same kinds as the stack's)."""
        return probe_eval.evaluate(spec, self, params)

    def select(self, selector: str, **params: Any) -> list[str]:
        try:
            sel = self.spec.selectors[selector]
        except KeyError:
            raise StackFileError(f"unknown selector {selector!r}; the stack offers {', '.join(sorted(self.spec.selectors)) or 'none'}") from None
        value = self.probe(sel.probe, **{**sel.params, **params})
        names = value if isinstance(value, list) else [value] if value else []
        return [n for n in names if isinstance(n, str) and n in self._names]

    def load(self, action: str, **params: Any) -> None:
        try:
            spec = self.spec.load[action]
        except KeyError:
            raise StackFileError(f"unknown load action {action!r}; the stack offers {', '.join(sorted(self.spec.load)) or 'none'}") from None
        merged = {**spec.params, **params}
        for step in spec.steps:
            self._load_step(step, merged)

    def _load_step(self, step: LoadStep, params: dict[str, Any]) -> None:
        if step.instance:
            targets = [fill(step.instance, params)]
        else:
            targets = [i.name for i in self.instances(step.service) if i.state == "running"]
        if not targets:
            raise StackError(f"load: no running instance of {step.service!r} to send {step.method} {step.path} to")
        body = fill(step.body, params) if step.body is not None else None
        shares: list[Any] = [None] * len(targets)
        if step.split and body is not None:
            total = int(body.get(step.split, 0))
            base, extra = divmod(total, len(targets))
            shares = [base + (1 if n < extra else 0) for n in range(len(targets))]
        for target, share in zip(targets, shares):
            payload = dict(body) if body is not None else None
            if payload is not None and step.split:
                payload[step.split] = share
            status, text = self._send(target, step.method, fill(step.path, params), payload)
            if status not in step.accept:
                raise StackError(f"load: {step.method} {target}{step.path} answered {status}: {text[:200]}")

    def _send(self, instance: str, method: str, path: str, body: Any) -> tuple[int, str]:
        host, port = self.address(instance)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://{host}:{port}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        deadline = time.monotonic() + 10
        while True:
            self.checkpoint()
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:
                    return reply.status, reply.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as err:
                return err.code, err.read().decode("utf-8", "replace")
            except (urllib.error.URLError, OSError) as err:
                if time.monotonic() > deadline:
                    raise StackError(f"load: {instance} at {host}:{port} unreachable: {err}") from None
                time.sleep(0.2)

    # --- teardown --------------------------------------------------------------

    def down(self) -> None:
        from chaos.stack import registry

        self.backend.teardown()
        self.torn_down = True
        registry.remove(self.run_id)

    def leftovers(self) -> list[str]:
        """What of this run still exists after ``down()`` (empty: the teardown is verified)."""
        return self.backend.leftovers()

    def record(self) -> dict[str, Any]:
        return {
            "backend": self.backend.kind,
            "stack_file": str(self.stack.path),
            "stack": self.spec.name,
            "proxy_url": self.proxy_url,
            "plan": self.plan.to_json(),
            "state": self.backend.record(),
        }
