"""Docker backend: one labeled network per run, one labeled container per instance.

Containers reach each other by instance name on the run's network (through
the proxy, as RQ_ROUTES say); the toolkit reaches each one on a port
published on 127.0.0.1 only. No container is privileged; every one runs
with an init so that stop is quick. Everything carries the run's labels, so
``roomquake clean`` can sweep what a killed run left behind.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from chaos import labels as L
from chaos.labels import RunIdentity
from chaos.stack.errors import StackError
from chaos.stack.plan import InstancePlan, Plan, docker_addressing, make_plan
from chaos.stack.running import Backend
from chaos.stack.spec import Stack, StackSpec

if TYPE_CHECKING:
    import docker


def _client() -> "docker.DockerClient":
    from chaos.engine import connect

    return connect()


def _fail(err: Exception, doing: str) -> StackError:
    from chaos.engine import failure

    reason = failure(err, doing)
    return StackError(reason.one_line())


class DockerBackend(Backend):
    kind = "docker"

    def __init__(self, stack: Stack, identity: RunIdentity, keep: bool = False, state: dict[str, Any] | None = None) -> None:
        self.stack = stack
        self.identity = identity
        self.run_id = identity.run_id
        self.client = _client()
        extra = {L.KEEP: "1"} if keep else {}
        state = state or {}
        self.labels: dict[str, str] = state.get("labels") or identity.labels(**extra)
        self.network_name: str = state.get("network") or f"rq-{self.run_id}"
        self.containers: dict[str, str] = dict(state.get("containers", {}))  # instance -> container id
        self.ports: dict[str, int] = dict(state.get("ports", {}))  # instance -> container port
        self.refs: dict[str, str] = dict(state.get("images", {}))  # stack image name -> reference
        self.published: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_record(cls, stack: Stack, run_id: str, state: dict[str, Any]) -> "DockerBackend":
        return cls(stack, RunIdentity(run_id=run_id), state=state)

    # --- planning and preparation -------------------------------------------------

    def plan(self, spec: StackSpec, profile: str | None) -> Plan:
        return make_plan(spec, profile, docker_addressing(f"{spec.proxy.service}-1", spec.proxy.listeners_from))

    def _resolve_images(self, plan: Plan) -> None:
        import docker

        needed = {self.stack.spec.services[i.service].image for i in plan.instances}
        builds = {n for n in needed if self.stack.spec.images[n].build}
        if builds:
            from chaos.images import ensure_images

            images = ensure_images(self.client)
            for name in builds:
                self.refs[name] = images.ref(self.stack.spec.images[name].build or name)
        for name in needed - builds:
            tag = self.stack.spec.images[name].tag or ""
            try:
                self.client.images.get(tag)
            except docker.errors.ImageNotFound:
                raise StackError(f"missing image {tag!r} (stack image {name!r}): build or load it first; nothing is pulled") from None
            except docker.errors.DockerException as err:
                raise _fail(err, f"looking up image {tag}") from err
            self.refs[name] = tag

    def prepare(self, plan: Plan) -> None:
        """Images present and the run's network created, before any container starts."""
        import docker

        self._resolve_images(plan)
        try:
            self.client.networks.create(self.network_name, driver="bridge", labels=self.labels, check_duplicate=True)
        except docker.errors.DockerException as err:
            raise _fail(err, f"creating network {self.network_name}") from err

    # --- lifecycle -----------------------------------------------------------------

    def container_name(self, instance: str) -> str:
        return f"rq-{self.run_id}-{instance}"

    def launch(self, inst: InstancePlan) -> None:
        import docker

        svc = self.stack.spec.services[inst.service]
        networking = self.client.api.create_networking_config(
            {self.network_name: self.client.api.create_endpoint_config(aliases=[inst.name])}
        )
        try:
            created = self.client.api.create_container(
                image=self.refs[svc.image],
                command=inst.command,
                name=self.container_name(inst.name),
                hostname=inst.name,
                environment=inst.env,
                labels={**self.labels, L.SERVICE: inst.service, L.INSTANCE: inst.name},
                ports=[inst.port],
                host_config=self.client.api.create_host_config(
                    port_bindings={inst.port: ("127.0.0.1", None)},  # loopback only, ephemeral host port
                    network_mode=self.network_name,
                    init=True,  # PID 1 forwards SIGTERM: stop takes ~0.1 s, not its timeout
                    privileged=False,
                ),
                networking_config=networking,
                stop_timeout=int(max(1, svc.stop_timeout_s)),
            )
            with self._lock:
                self.containers[inst.name] = created["Id"]
                self.ports[inst.name] = inst.port
            self.client.api.start(created["Id"])
        except docker.errors.DockerException as err:
            raise _fail(err, f"starting {inst.name}") from err

    def _id(self, name: str) -> str:
        try:
            return self.containers[name]
        except KeyError:
            raise StackError(f"docker backend: {name!r} has no container in run {self.run_id}") from None

    def _inspect(self, name: str) -> dict[str, Any] | None:
        import docker

        try:
            return self.client.api.inspect_container(self._id(name))
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException as err:
            raise _fail(err, f"inspecting {name}") from err

    def state(self, name: str) -> str:
        if name not in self.containers:
            return "missing"
        info = self._inspect(name)
        if info is None:
            return "missing"
        status = info["State"]["Status"]
        return {"running": "running", "restarting": "running", "paused": "paused"}.get(status, "exited")

    def exit_reason(self, name: str) -> str | None:
        info = self._inspect(name)
        if info is None:
            return "container is gone"
        if info["State"]["Status"] in ("running", "paused", "restarting", "created"):
            return None
        return f"exit code {info['State']['ExitCode']}; {self.log_tail(name)}"

    def log_tail(self, name: str, lines: int = 5) -> str:
        try:
            text = self.client.api.logs(self._id(name), tail=lines).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - logs are a courtesy in an error message
            return ""
        return " | ".join(text.strip().splitlines())

    def address(self, name: str) -> tuple[str, int]:
        cached = self.published.get(name)
        if cached:
            return cached
        info = self._inspect(name)
        bindings = ((info or {}).get("NetworkSettings", {}).get("Ports") or {}).get(f"{self.ports[name]}/tcp") or []
        if not bindings:
            # Stopped containers publish nothing; the probe will simply find nothing there.
            return "127.0.0.1", 0
        found = ("127.0.0.1", int(bindings[0]["HostPort"]))
        self.published[name] = found
        return found

    def _op(self, name: str, doing: str, call: Any, *args: Any, **kwargs: Any) -> None:
        import docker

        self.published.pop(name, None)  # a restarted container may get another host port
        try:
            call(self._id(name), *args, **kwargs)
        except docker.errors.APIError as err:
            if err.status_code == 409:  # already in that state (e.g. kill of a stopped container)
                return
            raise _fail(err, f"{doing} {name}") from err
        except docker.errors.DockerException as err:
            raise _fail(err, f"{doing} {name}") from err

    def kill(self, name: str) -> None:
        self._op(name, "killing", self.client.api.kill)

    def stop(self, name: str) -> None:
        svc = self.stack.spec.services[name.rsplit("-", 1)[0]]
        self._op(name, "stopping", self.client.api.stop, timeout=int(max(1, svc.stop_timeout_s)))

    def start(self, name: str) -> None:
        if self.state(name) == "paused":
            return
        self._op(name, "starting", self.client.api.start)

    def restart(self, name: str) -> None:
        svc = self.stack.spec.services[name.rsplit("-", 1)[0]]
        self._op(name, "restarting", self.client.api.restart, timeout=int(max(1, svc.stop_timeout_s)))

    def pause(self, name: str) -> None:
        self._op(name, "pausing", self.client.api.pause)

    def resume(self, name: str) -> None:
        self._op(name, "resuming", self.client.api.unpause)

    def disconnect(self, name: str) -> None:
        import docker

        try:
            self.client.api.disconnect_container_from_network(self._id(name), self.network_name, force=True)
        except docker.errors.DockerException as err:
            raise _fail(err, f"disconnecting {name}") from err

    def reconnect(self, name: str) -> None:
        import docker

        try:
            self.client.api.connect_container_to_network(self._id(name), self.network_name, aliases=[name])
        except docker.errors.APIError as err:
            if err.status_code in (403, 409) and "already" in str(err):
                return
            raise _fail(err, f"reconnecting {name}") from err
        except docker.errors.DockerException as err:
            raise _fail(err, f"reconnecting {name}") from err

    def squeeze(self, name: str, cpus: float | None = None, memory_mb: int | None = None) -> None:
        if cpus is None and memory_mb is None:
            raise StackError(f"squeeze {name}: give cpus, memory_mb or both")
        update: dict[str, Any] = {}
        if cpus is not None:
            update.update(cpu_period=100_000, cpu_quota=max(1000, int(cpus * 100_000)))
        if memory_mb is not None:
            update.update(mem_limit=f"{memory_mb}m", memswap_limit=f"{memory_mb}m")
        self._op(name, "squeezing", self.client.api.update_container, **update)

    def unsqueeze(self, name: str) -> None:
        # -1 lifts the CPU quota; memory cannot be unset on a running container, so raise it to the host's.
        total = int(self.client.info().get("MemTotal", 0)) or 1 << 40
        self._op(name, "unsqueezing", self.client.api.update_container, cpu_quota=-1, mem_limit=total, memswap_limit=-1)

    def image_ids(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, ref in self.refs.items():
            try:
                out[name] = self.client.images.get(ref).id
            except Exception:  # noqa: BLE001 - an image removed under us has no id
                continue
        return out

    def teardown(self) -> None:
        """Remove this run's containers and network: by id, never by name pattern."""
        import docker

        def remove(cid: str) -> None:
            try:
                self.client.api.remove_container(cid, force=True, v=True)
            except docker.errors.NotFound:
                pass

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(remove, list(self.containers.values())))
        # Containers that were being created when we failed carry our run label.
        for leftover in self.client.api.containers(all=True, filters={"label": f"{L.RUN}={self.run_id}"}):
            remove(leftover["Id"])
        for net in self.client.api.networks(filters={"label": f"{L.RUN}={self.run_id}"}):
            try:
                self.client.api.remove_network(net["Id"])
            except docker.errors.NotFound:
                pass

    def record(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "network": self.network_name,
            "containers": self.containers,
            "ports": self.ports,
            "images": self.refs,
        }
