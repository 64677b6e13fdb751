"""Docker backend: one labeled network per run, one labeled container per instance.

Containers reach each other by instance name on the run's network (through
the proxy, as RQ_ROUTES say); the toolkit reaches each one on a port
published on 127.0.0.1 only. No container is privileged; every one runs
with an init so that stop is quick. Everything carries the run's labels, so
``roomquake clean`` can sweep what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from chaos import labels as L
from chaos.engine import STUCK_NETWORK_HINT, id_of, network_is_stuck
from chaos.stack.containers import (ContainerSpec, ManagedContainer, RunNetwork, context_image, create_container, run_container,
                                    run_network)
from chaos.errors import EngineError
from chaos.labels import RunIdentity
from chaos.stack.errors import StackError
from chaos.stack.plan import InstancePlan, Plan, docker_addressing, make_plan
from chaos.stack.running import Backend
from chaos.stack.spec import Stack, StackSpec

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import docker

PUBLISH_ENV = "ROOMQUAKE_DOCKER_PUBLISH"
FORKSERVER_ONE = ["python", "-m", "chaos.forkserver", "--one"]
FORKSERVER_IMAGES = {"services"}  # images roomquake builds with the toolkit inside (docker/Dockerfile.services)


def _client() -> "docker.DockerClient":
    from chaos.engine import connect

    return connect()


def _fail(err: Exception, doing: str) -> StackError:
    from chaos.engine import failure

    reason = failure(err, doing)
    return StackError(reason.one_line())


@dataclass(frozen=True)
class KeptIdentity(RunIdentity):
    """A run whose resources outlive their owner (``stack up``): ``roomquake clean`` leaves them."""

    def labels(self, **extra: str) -> dict[str, str]:
        return super().labels(**{L.KEEP: "1", **extra})


def owner_identity(identity: RunIdentity, keep: bool) -> RunIdentity:
    """The identity a backend labels its resources with: a kept stack's says so (``clean`` leaves it)."""
    if keep and not isinstance(identity, KeptIdentity):
        return KeptIdentity(run_id=identity.run_id, pid=identity.pid, host=identity.host)
    return identity


class DockerBackend(Backend):
    kind = "docker"

    def __init__(self, stack: Stack, identity: RunIdentity, keep: bool = False, state: dict[str, Any] | None = None) -> None:
        self.stack = stack
        self.identity = identity = owner_identity(identity, keep)
        self.run_id = identity.run_id
        self.client = _client()
        self.keep = keep
        state = state or {}
        self.refs: dict[str, str] = dict(state.get("images", {}))  # stack image name -> reference
        self.managed: dict[str, ManagedContainer] = {}
        self.network: RunNetwork | None = None
        self._exit = contextlib.ExitStack()  # in-process owner of network and containers
        self._lock = threading.Lock()
        self._leave_lock = threading.Lock()  # containers leave the run network one at a time (teardown, renewals)
        self.stuck_networks: set[str] = set()  # refused by the engine with nothing on them (engine.network_is_stuck)
        self._crash_base: dict[str, int] = {}  # restarts before we started watching (attached stacks)
        self._released_ips: dict[str, str] = {}  # pinned address of a removed instance, for its successor
        # The toolkit reaches each container at its pinned address on the run's network (a Linux host has a
        # route to its bridges); publishing a port costs every start and removal firewall rules and a proxy
        # process. An engine whose bridges the host cannot reach (rootless, Docker Desktop) publishes on
        # 127.0.0.1 with ROOMQUAKE_DOCKER_PUBLISH=1.
        self.publish = os.environ.get(PUBLISH_ENV, "") == "1"
        self.generations: dict[str, int] = {}  # fresh instances forked in each container (respawn)
        if state:
            self._reattach(state)

    @classmethod
    def from_record(cls, stack: Stack, run_id: str, state: dict[str, Any]) -> "DockerBackend":
        identity = RunIdentity(
            run_id=run_id, pid=int(state["owner"]["pid"]), host=state["owner"]["host"]
        )
        return cls(stack, identity, keep=bool(state.get("keep")), state=state)

    def _reattach(self, state: dict[str, Any]) -> None:
        """Rebuild the container handles of a run another process brought up."""
        import docker

        try:
            net = self.client.networks.get(state["network"]["id"])
            subnet = ipaddress.IPv4Network(state["network"]["subnet"]) if state["network"].get("subnet") else None
            self.network = RunNetwork(network=net, subnet=subnet)
            used = [int(ipaddress.IPv4Address(c["ip"])) for c in state.get("containers", {}).values() if c.get("ip")]
            if subnet is not None and used:  # addresses pinned by the process that brought it up are taken
                self.network._next = max(used) - int(subnet.network_address) + 1
        except docker.errors.NotFound:
            self.network = None
        def get(c: dict[str, Any]) -> Any:
            try:
                return self.client.containers.get(c["id"])
            except docker.errors.NotFound:
                return None

        recorded = state.get("containers", {})
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(recorded)))) as pool:  # one inspection each, at once
            found = dict(zip(recorded, pool.map(get, recorded.values())))
        for name, c in recorded.items():
            container = found[name]
            if container is None:
                continue
            ports = tuple(c.get("ports") or ([c["port"]] if c.get("port") else []))
            service = self.stack.spec.services.get(c["service"])
            aliases = tuple(service.container.aliases) if service and service.container else ()
            spec = ContainerSpec(image=c["image"], name=name, service=c["service"], instance=name, ports=ports,
                                 aliases=aliases, volumes=dict(c.get("volumes") or {}), publish=bool(c["host_ports"]),
                                 command=c.get("command"))
            self.generations[name] = int(c.get("generation") or 0)
            self.managed[name] = ManagedContainer(
                container=container, spec=spec, network=self.network,
                ip=c.get("ip"), host_ports={int(k): int(v) for k, v in c["host_ports"].items()},
            )
            self._crash_base[name] = int(container.attrs.get("RestartCount") or 0)

    # --- planning and preparation -------------------------------------------------

    def plan(self, spec: StackSpec, profile: str | None, secret: str = "", proxy_token: str = "") -> Plan:
        return make_plan(spec, profile, docker_addressing(f"{spec.proxy.service}-1", spec.proxy.listeners_from),
                         secret, proxy_token)

    def _resolve_images(self, plan: Plan) -> None:
        import docker

        needed = {self.stack.spec.services[i.service].image for i in plan.instances}
        contexts = {n for n in needed if self.stack.spec.images[n].context}
        for name in sorted(contexts):  # the user's build contexts (a Compose import), built offline
            self.refs[name] = context_image(self.client, self.stack, name)
        needed -= contexts
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
        self._listener_ports = tuple(int(p.listen.rsplit(":", 1)[1]) for p in plan.proxies)
        self._resolve_images(plan)
        self.network = self._exit.enter_context(run_network(self.client, self.identity))

    # --- lifecycle -----------------------------------------------------------------

    def launch(self, inst: InstancePlan) -> None:
        """Create the instance's container (in the run's record at once) and start it."""
        assert self.network is not None
        svc = self.stack.spec.services[inst.service]
        volumes = {}
        if svc.volume:  # kept for the run: a labelled volume, removed by teardown (or clean) with the rest
            volume = self._create_volume(inst.name)
            volumes[volume] = svc.volume
        options = svc.container
        ports: tuple[int, ...] = (inst.port,) if inst.port else ()
        if inst.service == self.stack.spec.proxy.service:
            # The link proxies' listeners too, on 127.0.0.1: a client on the host can go through a link
            # (Toxiproxy #252); `roomquake stack status` shows where.
            ports += getattr(self, "_listener_ports", ())
        spec = ContainerSpec(
            image=self.refs[svc.image],
            name=inst.name,
            service=inst.service,
            instance=inst.name,
            command=self._command(inst) or None,  # none: the image's own command
            env=inst.env,
            ports=ports,
            entrypoint=inst.entrypoint,
            aliases=tuple(options.aliases) if options else (),
            binds=tuple((str((self.stack.root / m.source).resolve()), m.target, m.read_only)
                        for m in (options.mounts if options else [])),
            user=options.user if options else None,
            workdir=options.workdir if options else None,
            pin_ip=self.network.subnet is not None,  # disconnect/reconnect keeps the address: flows resume
            restart=svc.restart,
            volumes=volumes,
            ip=self._released_ips.pop(inst.name, None),
            publish=self.publish or self.network.subnet is None,
        )
        if spec.publish:
            with contextlib.ExitStack() as own:  # entered here, outside the lock: launches run side by side
                try:
                    managed = own.enter_context(run_container(self.client, self.identity, self.network, spec))
                except EngineError as err:
                    raise StackError(f"starting {inst.name}: {err.one_line()}") from None
                with self._lock:
                    self.managed[inst.name] = managed
                    self._exit.enter_context(own.pop_all())  # removed at teardown with the rest
            return
        try:
            managed = create_container(self.client, self.identity, self.network, spec)
        except EngineError as err:
            raise StackError(f"creating {inst.name}: {err.one_line()}") from None
        with self._lock:
            self.managed[inst.name] = managed
            self._exit.callback(managed.remove)
        self._guard(inst.name, "starting", lambda: managed._call("starting", managed.container.start))

    def _command(self, inst: InstancePlan) -> list[str]:
        """The instance's command; under the fork server when its service preloads and its image holds the toolkit.

        In a container the fork server is the main process and the instance
        its child: it leaves with the instance's exit code (the engine's
        restart policy sees every crash), passes a stop on, and on SIGUSR1
        forks a fresh instance, which resets the container for a renewed
        stack without the engine creating or starting anything.
        """
        svc = self.stack.spec.services[inst.service]
        if not svc.preload or self.stack.spec.images[svc.image].build not in FORKSERVER_IMAGES:
            return inst.command
        wrapper = [*FORKSERVER_ONE, "--preload", ",".join(svc.preload)]
        if svc.volume:
            wrapper += ["--empty", svc.volume]
        return [*wrapper, "--", *inst.command]

    def respawnable(self, name: str) -> bool:
        """Runs under the fork server and is running: ``respawn`` can replace its instance in place."""
        m = self.managed.get(name)
        return (m is not None and list(m.spec.command or [])[:len(FORKSERVER_ONE)] == FORKSERVER_ONE
                and self.state(name) == "running")

    def respawn(self, name: str, timeout: float = 20.0) -> None:
        """A fresh instance in the same container (SIGUSR1 to its fork server), confirmed by the server's log line."""
        import time

        from chaos.forkserver import RESPAWNED

        m = self._m(name)
        generation = self.generations.get(name, 0) + 1
        self._guard(name, "respawning", m.kill, signal="SIGUSR1")  # docker-init passes it to the fork server
        wanted = f"{RESPAWNED} {name} (generation {generation})"
        deadline = time.monotonic() + timeout
        while wanted not in m.logs(tail=50):
            if time.monotonic() > deadline:
                raise StackError(f"respawning {name}: its fork server did not confirm within {timeout:g}s")
            time.sleep(0.02)
        self.generations[name] = generation

    def remove(self, name: str) -> None:
        """Remove an instance's container and its kept volume (a renewed stack starts it afresh)."""
        import docker

        managed = self.managed.pop(name, None)
        self.generations.pop(name, None)
        if managed is not None:
            if managed.ip:
                self._released_ips[name] = managed.ip
            self._leave_network(managed)  # renewals remove in parallel: the leaves one at a time
            managed.remove()
        with contextlib.suppress(docker.errors.NotFound):  # also when its container is gone already
            self.client.api.remove_volume(f"rq-{self.run_id}-{name}-data", force=True)

    def _create_volume(self, instance: str) -> str:
        name = f"rq-{self.run_id}-{instance}-data"
        try:
            self.client.volumes.create(name=name, labels=self.identity.labels(**{L.SERVICE: instance.rsplit("-", 1)[0],
                                                                                 L.INSTANCE: instance}))
        except Exception as err:  # noqa: BLE001 - any engine failure is a bring-up failure
            raise StackError(f"creating volume {name}: {err}") from None
        return name

    def _m(self, name: str) -> ManagedContainer:
        try:
            return self.managed[name]
        except KeyError:
            raise StackError(f"docker backend: {name!r} has no container in run {self.run_id}") from None

    def _guard(self, name: str, doing: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except EngineError as err:
            if "is not running" in str(err) or "is already" in str(err):
                return None  # e.g. kill of a stopped container: already where we wanted it
            raise StackError(f"{doing} {name}: {err.one_line()}") from None

    def state(self, name: str) -> str:
        if name not in self.managed:
            return "missing"
        try:
            status = self.managed[name].state()
        except EngineError:
            return "missing"
        return {"running": "running", "restarting": "running", "paused": "paused"}.get(status, "exited")

    def crashes(self, name: str) -> int:
        """How often the engine restarted this container after a crash (its restart policy)."""
        try:
            self._m(name).state()  # reloads the attributes
            return int(self._m(name).container.attrs.get("RestartCount") or 0)
        except (EngineError, StackError):
            return 0

    def exit_reason(self, name: str) -> str | None:
        state = self.state(name)  # one engine call: its attributes also hold the restart count
        if state in ("running", "paused"):
            m = self.managed[name]
            crashed = int(m.container.attrs.get("RestartCount") or 0) - self._crash_base.get(name, 0)
            return f"crashed {crashed} time(s) and is being restarted; {self.log_tail(name)}" if crashed > 0 else None
        return f"container state {state}; {self.log_tail(name)}"

    def log_text(self, name: str, lines: int) -> str:
        return self._m(name).logs(tail=lines)

    def container_of(self, name: str) -> tuple[docker.DockerClient, str] | None:
        query = {"label": [f"{L.RUN}={self.run_id}", f"{L.INSTANCE}={name}"]}
        found = self.client.api.containers(filters=query)  # running ones only
        return (self.client, str(found[0]["Id"])) if found else None

    def address(self, name: str) -> tuple[str, int]:
        m = self._m(name)
        if not m.spec.ports:
            raise StackError(f"{name} listens on no port (its service has port: null)")
        return m.address(m.spec.ports[0])  # its pinned address (or 127.0.0.1 and the published port)

    def listener_address(self, listen: str) -> tuple[str, int] | None:
        """Where a link proxy's listener (``0.0.0.0:20003``) is reached from the host, if published."""
        proxy = self.managed.get(f"{self.stack.spec.proxy.service}-1")
        port = int(listen.rsplit(":", 1)[1])
        if proxy is None or port not in proxy.host_ports:
            return None
        return proxy.address(port)

    def _stop_timeout(self, name: str) -> float:
        return self.stack.spec.services[self._m(name).spec.service].stop_timeout_s

    def kill(self, name: str) -> None:
        self._guard(name, "killing", self._m(name).kill)

    def stop(self, name: str) -> None:
        self._guard(name, "stopping", self._m(name).stop, timeout=self._stop_timeout(name))

    def start(self, name: str) -> None:
        if self.state(name) == "paused":
            return
        self._guard(name, "starting", self._m(name).start)

    def restart(self, name: str) -> None:
        self._guard(name, "restarting", self._m(name).restart, timeout=self._stop_timeout(name))

    def pause(self, name: str) -> None:
        self._guard(name, "pausing", self._m(name).pause)

    def resume(self, name: str) -> None:
        self._guard(name, "resuming", self._m(name).unpause)

    def disconnect(self, name: str) -> None:
        self._guard(name, "disconnecting", self._m(name).disconnect)

    def reconnect(self, name: str) -> None:
        self._guard(name, "reconnecting", self._m(name).reconnect)

    def squeeze(self, name: str, cpus: float | None = None, memory_mb: int | None = None) -> None:
        if cpus is None and memory_mb is None:
            raise StackError(f"squeeze {name}: give cpus, memory_mb or both")
        self._guard(name, "squeezing", self._m(name).squeeze, cpus=cpus, memory_mb=memory_mb)

    def unsqueeze(self, name: str) -> None:
        m = self._m(name)
        if m._squeezed_from is None:  # squeezed by another process (attached): lift the limits
            m.squeeze()
            m._squeezed_from = {"CpuQuota": 0, "CpuPeriod": 0, "Memory": 0, "MemorySwap": 0}
        self._guard(name, "unsqueezing", m.unsqueeze)

    def detach(self) -> None:
        """Leave network and containers running after this process exits (``stack up``).

        chaos.stack.containers' context managers remove on exit, and a suspended
        generator's ``finally`` also runs when it is garbage-collected at
        interpreter exit: each handle is told to keep what it holds, and the
        teardown callbacks are dropped. ``stack down`` rebuilds fresh handles.
        """
        for m in self.managed.values():
            m.keep()
        if self.network is not None:
            self.network.keep()
        self._exit.pop_all()

    def image_ids(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, ref in self.refs.items():
            try:
                out[name] = id_of(self.client.images.get(ref))
            except Exception:  # noqa: BLE001 - an image removed under us has no id
                continue
        return out

    def teardown(self) -> None:
        """Remove this run's containers (in parallel) and its network, by id.

        A forced removal kills with SIGKILL: nothing of a torn-down stack is
        kept, so only a container whose kept data must be written out
        (``volume``) is stopped first (SIGTERM and its stop timeout).
        """
        import docker

        def end(m: ManagedContainer) -> None:
            if m.spec.volumes:
                with contextlib.suppress(EngineError):
                    m.stop(timeout=self.stack.spec.services[m.spec.service].stop_timeout_s if self.stack else 3)
            m.remove()

        managed = list(self.managed.values())
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(managed)))) as pool:
            # Each container leaves the network in this thread, one at a time, then is removed in the pool.
            removals = []
            for m in managed:
                self._leave_network(m)
                removals.append(pool.submit(end, m))
            for removal in removals:
                removal.result()
        self._exit.close()  # context exits: removals are no-ops now, then the network
        # Containers caught half-created by a failure carry our run label: sweep them by id.
        for leftover in self.client.api.containers(all=True, filters={"label": f"{L.RUN}={self.run_id}"}):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(leftover["Id"], force=True, v=True)
        for net in self.client.api.networks(filters={"label": f"{L.RUN}={self.run_id}"}):
            self._remove_network(net)
        for volume in (self.client.api.volumes(filters={"label": f"{L.RUN}={self.run_id}"}) or {}).get("Volumes") or []:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_volume(volume["Name"], force=True)

    def _leave_network(self, m: ManagedContainer) -> None:
        """Disconnect one container from the run network; in this process, one leave at a time.

        Docker 20.10 (Debian's 20.10.24 included) can deadlock its whole network
        controller when containers leave one bridge network at the same time
        (moby/moby#46661, fixed in 20.10.27: ``getSvcRecords`` takes the
        network's lock then the controller's, the endpoint-delete watcher the
        reverse). A CI run hung that way: two stacks torn down in parallel,
        then no engine call answered for 16 minutes. Leaves one at a time meet
        only if the watcher lags by a whole leave, and a container removed
        after its leave has no endpoint left to release, so removals still
        overlap. Parallel leaves also left networks the engine would not
        remove ("active endpoints", none shown) until it restarted: 4 in about
        45 cycles of 30 containers under load, none one at a time.
        """
        import docker

        if self.network is None or self.network.kept or m.kept or m.network is None:
            return
        with self._leave_lock, contextlib.suppress(docker.errors.DockerException):  # gone or never joined: fine
            self.client.api.disconnect_container_from_network(str(m.container.id), str(self.network.network.id),
                                                              force=True)

    def _remove_network(self, net: dict[str, Any], timeout: float = 10.0) -> None:
        """Remove the run's network; refused while it has endpoints, asked again until ``timeout``.

        The engine releases a force-removed container's endpoint a little
        after the removal returns, more so under load. Once (20.10, load
        15-20) an endpoint with no container behind it stayed for good, which
        `docker network inspect` does not show and no call removes: such a
        stuck network is said once and not counted as the run's leftover
        (`roomquake clean` says the same of it); other refusals fail in one line.
        """
        import docker

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client.api.remove_network(net["Id"])
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as err:
                if "active endpoints" not in str(err) or time.monotonic() > deadline:
                    if network_is_stuck(self.client, net["Id"], err):
                        # Nothing of the run is on it: say so once and let the teardown finish.
                        self.stuck_networks.add(net.get("Name", net["Id"]))
                        log.warning("network %s is stuck in the engine: %s", net.get("Name"), STUCK_NETWORK_HINT)
                        return
                    raise _fail(err, f"removing network {net.get('Name', net['Id'][:12])}") from None
            time.sleep(0.3)

    def leftovers(self) -> list[str]:
        query = {"label": f"{L.RUN}={self.run_id}"}
        try:
            containers = self.client.api.containers(all=True, filters=query)
            networks = self.client.api.networks(filters=query)
            volumes = (self.client.api.volumes(filters=query) or {}).get("Volumes") or []
        except Exception as err:  # noqa: BLE001 - an engine that cannot answer cannot vouch for anything
            return [f"unknown (the engine did not answer: {err})"]
        found = [f"container {(c.get('Names') or [c['Id'][:12]])[0].lstrip('/')}" for c in containers]
        found += [f"network {n['Name']}" for n in networks if n["Name"] not in self.stuck_networks]
        found += [f"volume {v['Name']}" for v in volumes]
        return found

    def record(self) -> dict[str, Any]:
        net = self.network
        return {
            "owner": {"pid": self.identity.pid, "host": self.identity.host},
            "keep": self.keep,
            "network": {"id": net.network.id, "subnet": str(net.subnet) if net.subnet else None} if net else {},
            "containers": {
                name: {
                    "id": m.id,
                    "image": m.spec.image,
                    "service": m.spec.service,
                    "port": m.spec.ports[0] if m.spec.ports else None,
                    "ports": list(m.spec.ports),
                    "host_ports": {str(k): v for k, v in m.host_ports.items()},
                    "ip": m.ip,
                    "volumes": m.spec.volumes,
                    "command": m.spec.command,
                    "generation": self.generations.get(name, 0),
                }
                for name, m in self.managed.items()
            },
            "images": self.refs,
        }
