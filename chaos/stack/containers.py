"""Small context-managed Docker helpers the docker backend composes.

    identity = RunIdentity()
    with run_network(client, identity) as net:
        spec = ContainerSpec(image=images.services.ref, name="edge-1", service="edge",
                             instance="edge-1", ports=(8765,), env={...}, pin_ip=True)
        with run_container(client, identity, net, spec) as edge:
            wait_ready(edge, tcp_probe(*edge.address(8765)), timeout=10)
            edge.disconnect(); edge.reconnect()   # same IP back: open TCP flows resume
            edge.squeeze(cpus=0.2, memory_mb=128); edge.unsqueeze()

Everything carries the run's labels (``io.roomquake.run`` ...), so
``roomquake clean`` can remove what a killed run left behind. Host ports are
chosen here and published on 127.0.0.1 only, so they stay the same across
stop/start (the engine would otherwise pick a new ephemeral port each start).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chaos.engine import failure
from chaos.errors import EngineError
from chaos.labels import INSTANCE, SERVICE, RunIdentity
from chaos.stack.ports import free_ports

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container
    from docker.models.networks import Network

# Pinned-address networks need a subnet chosen by us (the engine refuses an
# ipv4_address on a network whose subnet it picked). This private /16 is cut
# into /24s; a run takes the first free one starting from a hash of its id.
SUBNET_POOL = ipaddress.IPv4Network("10.213.0.0/16")
SUBNET_PREFIX = 24
FIRST_HOST = 10  # addresses below it stay free (gateway is .1)


class ContainerNotReady(EngineError):
    """A container exited or did not become ready in time."""


def context_image(client: docker.DockerClient, stack: Any, name: str) -> str:
    """The ref of the stack's image ``name``, built offline from its build context (a Compose import's),
    or found built already; a StackError in one line when it cannot be."""
    from chaos.errors import RoomquakeError
    from chaos.images.context import ensure_context_image
    from chaos.stack.errors import StackError

    try:
        return ensure_context_image(client, stack.root, stack.name, name, stack.spec.images[name].context).ref
    except RoomquakeError as err:
        raise StackError(err.one_line()) from None


def _host_routes() -> list[ipaddress.IPv4Network]:
    """IPv4 routes of this host, so a run's subnet never shadows a real network."""
    routes: list[ipaddress.IPv4Network] = []
    with suppress(OSError), open("/proc/net/route", encoding="ascii") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            dest, mask = (int(fields[1], 16), int(fields[7], 16))
            if mask == 0:
                continue  # the default route covers everything; it is not a conflict
            # /proc/net/route holds little-endian hex.
            net = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
            prefix = bin(mask).count("1")
            routes.append(ipaddress.IPv4Network(f"{net}/{prefix}", strict=False))
    return routes


def candidate_subnets(run_id: str) -> Iterator[ipaddress.IPv4Network]:
    subnets = list(SUBNET_POOL.subnets(new_prefix=SUBNET_PREFIX))
    start = int(hashlib.sha256(run_id.encode()).hexdigest(), 16) % len(subnets)
    routes = _host_routes()
    for subnet in subnets[start:] + subnets[:start]:
        if not any(subnet.overlaps(route) for route in routes):
            yield subnet


@dataclass
class RunNetwork:
    """A user-defined bridge network of one run, with addresses to pin."""

    network: Network
    subnet: ipaddress.IPv4Network | None
    kept: bool = False  # keep(): left in place when its context ends (a stack that outlives this process)
    _next: int = FIRST_HOST
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # backends launch in threads

    @property
    def name(self) -> str:
        return str(self.network.name)

    def keep(self) -> None:
        """Leave the network in place when its ``run_network`` context ends, or at interpreter exit."""
        self.kept = True

    def allocate_ip(self) -> str:
        if self.subnet is None:
            raise EngineError(f"network {self.name} has no subnet of ours: cannot pin an address")
        with self._lock:
            if self._next > self.subnet.num_addresses - 2:
                raise EngineError(f"network {self.name} ({self.subnet}) has no address left to pin")
            address = str(self.subnet.network_address + self._next)
            self._next += 1
        return address


@contextmanager
def run_network(
    client: docker.DockerClient, identity: RunIdentity, *, name: str | None = None, pinnable: bool = True
) -> Iterator[RunNetwork]:
    """A labelled bridge network for one run; removed on exit.

    ``pinnable``: give it a subnet of our own, so containers can keep their
    address across disconnect/reconnect.
    """
    import docker
    from docker.types import IPAMConfig, IPAMPool

    name = name or f"rq-{identity.run_id}"
    labels = identity.labels()
    network = None
    subnet = None
    try:
        if pinnable:
            for candidate in candidate_subnets(identity.run_id):
                ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(candidate), gateway=str(candidate.network_address + 1))])
                try:
                    network = client.networks.create(name, driver="bridge", ipam=ipam, labels=labels, check_duplicate=True)
                    subnet = candidate
                    break
                except docker.errors.APIError as exc:
                    if "overlap" not in str(exc).lower():
                        raise
            else:
                raise EngineError(f"no free /{SUBNET_PREFIX} left in {SUBNET_POOL} for network {name}")
        else:
            network = client.networks.create(name, driver="bridge", labels=labels, check_duplicate=True)
    except docker.errors.DockerException as exc:
        raise failure(exc, f"creating network {name}") from exc
    made = RunNetwork(network=network, subnet=subnet)
    try:
        yield made
    finally:
        # Not raised from here: it would hide the error that ended the block, and
        # a network left behind is labelled, so `roomquake clean` removes it later.
        if not made.kept:
            with suppress(docker.errors.DockerException):
                network.remove()


@contextmanager
def run_volume(client: docker.DockerClient, identity: RunIdentity, *, name: str | None = None) -> Iterator[Any]:
    """A labelled named volume for one run; removed on exit (if no container holds it)."""
    import docker

    name = name or f"rq-{identity.run_id}-data"
    try:
        volume = client.volumes.create(name=name, labels=identity.labels())
    except docker.errors.DockerException as exc:
        raise failure(exc, f"creating volume {name}") from exc
    try:
        yield volume
    finally:
        with suppress(docker.errors.DockerException):  # left behind: labelled, so `clean` gets it
            volume.remove(force=True)


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    name: str  # container name; the run id is prefixed to keep runs apart
    service: str
    instance: str
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()  # container ports to publish on 127.0.0.1
    aliases: tuple[str, ...] = ()  # extra names on the run network (the instance name is always one)
    pin_ip: bool = False  # keep the same address across disconnect/reconnect
    ip: str | None = None  # with pin_ip: this address (a replaced container keeps its predecessor's)
    cap_add: tuple[str, ...] = ()  # e.g. ("NET_ADMIN",) for in-container network faults
    mem_limit_mb: int | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)
    restart: str | None = None  # Docker restart policy name, e.g. "on-failure" (None: never restarted)
    volumes: dict[str, str] = field(default_factory=dict)  # volume name -> mount path in the container
    entrypoint: list[str] | None = None  # replaces the image's entrypoint
    binds: tuple[tuple[str, str, bool], ...] = ()  # (host path, path in the container, read-only)
    user: str | None = None
    workdir: str | None = None
    publish: bool = True  # ports published on 127.0.0.1; False: the host reaches the container at its address


PAUSE_ATTEMPTS = 5


def pause_retrying(pause: Callable[[], Any]) -> None:
    """Pause, asked again a bounded number of times when the freezer gives up.

    The cgroup v1 freezer answers "unable to freeze" when a process does not
    stop in time on a loaded machine (seen at load ~15) and leaves the
    container running; the next try usually succeeds.
    """
    import docker

    for attempt in range(PAUSE_ATTEMPTS):
        try:
            pause()
            return
        except docker.errors.APIError as err:
            if "unable to freeze" not in str(err) or attempt == PAUSE_ATTEMPTS - 1:
                raise
            time.sleep(0.1)


@dataclass
class ManagedContainer:
    """A running container of a run and the server-loss operations on it."""

    container: Container
    spec: ContainerSpec
    network: RunNetwork | None  # None: a swarm task's container (the swarm owns its network)
    ip: str | None
    host_ports: dict[int, int]
    kept: bool = False  # keep(): remove() leaves it running (a stack that outlives this process)
    _squeezed_from: dict[str, int] | None = None

    @property
    def name(self) -> str:
        return str(self.container.name)

    @property
    def id(self) -> str:
        return str(self.container.id)

    def address(self, port: int) -> tuple[str, int]:
        """Where the toolkit reaches container ``port``: 127.0.0.1 and a fixed host port when published,
        else the container's pinned address on the run's network (the host has a route to it)."""
        if port in self.host_ports:
            return ("127.0.0.1", self.host_ports[port])
        if self.ip is None:
            raise EngineError(f"container {self.name}: port {port} is not published and its address is not pinned")
        return (self.ip, port)

    @property
    def aliases(self) -> list[str]:
        return [self.spec.instance, *self.spec.aliases]

    def keep(self) -> None:
        """Leave the container running when it would be removed (its context's end, a teardown callback)."""
        self.kept = True

    def state(self) -> str:
        """The engine's status: created, running, paused, exited, ..."""

        def inspect() -> str:
            self.container.reload()
            return str(self.container.status)

        return str(self._call("inspecting", inspect))

    def _call(self, doing: str, action: Callable[[], Any]) -> Any:
        import docker

        try:
            return action()
        except docker.errors.DockerException as exc:
            raise failure(exc, f"{doing} container {self.name}") from exc

    # Server loss and the way back. Each inverse is named beside its fault.
    def kill(self, signal: str = "SIGKILL") -> None:  # inverse: start
        self._call("killing", lambda: self.container.kill(signal=signal))

    def stop(self, timeout: float = 2) -> None:  # inverse: start
        self._call("stopping", lambda: self.container.stop(timeout=int(timeout)))

    def start(self) -> None:
        if self.state() == "running":
            return
        self._call("starting", self.container.start)

    def pause(self) -> None:  # inverse: unpause
        self._call("pausing", lambda: pause_retrying(self.container.pause))

    def unpause(self) -> None:
        if self.state() == "paused":
            self._call("unpausing", self.container.unpause)

    def restart(self, timeout: float = 2) -> None:
        self._call("restarting", lambda: self.container.restart(timeout=int(timeout)))

    def _run_network(self, doing: str) -> RunNetwork:
        if self.network is None:  # a swarm task's container: its network is the swarm's
            raise EngineError(f"{doing} container {self.name}: it is on no network of this run")
        return self.network

    def disconnect(self) -> None:  # inverse: reconnect
        network = self._run_network("disconnecting")
        self._call("disconnecting", lambda: network.network.disconnect(self.container, force=True))

    def reconnect(self) -> None:
        network = self._run_network("reconnecting")
        if network.name in self._attached_networks():
            return
        self._call(
            "reconnecting",
            lambda: network.network.connect(self.container, aliases=self.aliases, ipv4_address=self.ip),
        )

    def _attached_networks(self) -> set[str]:
        self._call("inspecting", self.container.reload)
        return set(self.container.attrs.get("NetworkSettings", {}).get("Networks", {}) or {})

    def squeeze(self, *, cpus: float | None = None, memory_mb: int | None = None) -> None:  # inverse: unsqueeze
        """Cap CPU (cores) and/or memory (MiB) of the running container."""
        self._call("inspecting", self.container.reload)
        host = self.container.attrs["HostConfig"]
        if self._squeezed_from is None:
            self._squeezed_from = {k: int(host.get(k) or 0) for k in ("CpuQuota", "CpuPeriod", "Memory", "MemorySwap")}
        # None leaves a limit as it is (the SDK sends only what is given)
        period, quota = (100_000, max(1_000, int(cpus * 100_000))) if cpus is not None else (None, None)
        memory = memory_mb * 2**20 if memory_mb is not None else None
        if cpus is not None or memory is not None:
            self._call("squeezing", lambda: self.container.update(cpu_period=period, cpu_quota=quota, mem_limit=memory,
                                                                  memswap_limit=memory))

    def unsqueeze(self) -> None:
        """Give back what squeeze took: the CPU quota and memory limit from before."""
        before = self._squeezed_from
        if before is None:
            return
        if before["Memory"]:
            memory, swap = before["Memory"], before["MemorySwap"] or -1
        else:
            # The engine cannot unset a memory limit on a live container (cgroup v1
            # refuses -1): the host's RAM is the same as none.
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            swap = 2 * memory
        self._call("unsqueezing", lambda: self.container.update(
            cpu_period=before["CpuPeriod"] or 100_000, cpu_quota=before["CpuQuota"] or -1, mem_limit=memory,
            memswap_limit=swap))
        self._squeezed_from = None

    def logs(self, tail: int = 20) -> str:
        import docker

        try:
            return self.container.logs(tail=tail).decode(errors="replace")
        except docker.errors.DockerException:
            return ""

    def remove(self) -> None:
        import docker

        if self.kept:
            return
        try:
            self.container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass  # already gone (e.g. swept by `roomquake clean --all`)
        except docker.errors.DockerException as exc:
            raise failure(exc, f"removing container {self.name}") from exc


def container_name(identity: RunIdentity, name: str) -> str:
    return f"rq-{identity.run_id}-{name}"


def create_container(
    client: docker.DockerClient, identity: RunIdentity, network: RunNetwork, spec: ContainerSpec,
    host_ports: dict[int, int] | None = None,
) -> ManagedContainer:
    """Create (not start) a labelled container on the run network; ``host_ports``: container port -> host port.

    One engine call: the high-level ``containers.create`` inspects the new
    container afterwards, which a bring-up of a dozen pays a dozen times.
    """
    import docker
    # the SDK's own argument mapping (pinned SDK); private, so types-docker does not declare it
    from docker.models.containers import _create_container_args  # type: ignore[attr-defined]

    labels = identity.labels(**{SERVICE: spec.service, INSTANCE: spec.instance}, **spec.extra_labels)
    ip = (spec.ip or network.allocate_ip()) if spec.pin_ip else None
    endpoint = client.api.create_endpoint_config(aliases=[spec.instance, *spec.aliases], ipv4_address=ip)
    name = container_name(identity, spec.name)
    host_ports = dict(host_ports or {})
    args = _create_container_args(dict(
        image=spec.image,
        command=spec.command,
        name=name,
        hostname=spec.instance,
        environment=spec.env,
        labels=labels,
        network=network.name,
        networking_config={network.name: endpoint},
        ports={f"{port}/tcp": ("127.0.0.1", host) for port, host in host_ports.items()},
        init=True,  # PID 1 forwards SIGTERM: stop takes ~0.1 s, not its timeout
        privileged=False,
        cap_add=list(spec.cap_add) or None,
        mem_limit=f"{spec.mem_limit_mb}m" if spec.mem_limit_mb else None,
        restart_policy={"Name": spec.restart} if spec.restart and spec.restart != "no" else None,
        volumes={**{vol: {"bind": path, "mode": "rw"} for vol, path in spec.volumes.items()},
                 **{host: {"bind": path, "mode": "ro" if ro else "rw"} for host, path, ro in spec.binds}} or None,
        entrypoint=spec.entrypoint,
        user=spec.user,
        working_dir=spec.workdir,
        version=client.api.api_version,
    ))
    try:
        created = client.api.create_container(**args)
    except docker.errors.DockerException as exc:
        raise failure(exc, f"creating container {name} from {spec.image}") from exc
    container = client.containers.prepare_model({"Id": created["Id"], "Name": f"/{name}"})
    return ManagedContainer(container=container, spec=spec, network=network, ip=ip, host_ports=host_ports)


@contextmanager
def run_container(
    client: docker.DockerClient, identity: RunIdentity, network: RunNetwork, spec: ContainerSpec
) -> Iterator[ManagedContainer]:
    """Create and start a labelled container on the run network; removed (with its volumes) on exit.

    Ports are published on 127.0.0.1 when ``spec.publish``; a host port taken
    meanwhile by someone else is retried with another.
    """
    import docker

    managed = None
    for attempt in range(5):
        # free on 127.0.0.1 right now (the engine binds them when the container starts)
        ports = dict(zip(spec.ports, free_ports(len(spec.ports)))) if spec.publish else {}
        managed = create_container(client, identity, network, spec, ports)
        try:
            managed.container.start()
            break
        except docker.errors.APIError as exc:
            taken = "port is already allocated" in str(exc) or "address already in use" in str(exc)
            with suppress(docker.errors.DockerException):
                managed.container.remove(force=True, v=True)
            if not taken or attempt == 4:
                raise failure(exc, f"starting container {managed.name} from {spec.image}") from exc
        except docker.errors.DockerException as exc:
            with suppress(docker.errors.DockerException):
                managed.container.remove(force=True, v=True)
            raise failure(exc, f"starting container {managed.name} from {spec.image}") from exc
    assert managed is not None
    try:
        yield managed
    finally:
        managed.remove()


def tcp_probe(host: str, port: int, timeout: float = 0.5, settle: float = 0.2) -> Callable[[], bool]:
    """True when a TCP server really listens behind ``host:port``.

    A published port accepts at once even while nothing listens inside the
    container (the engine's proxy accepts, then closes), so an accepted
    connection counts only if it is not closed within ``settle`` seconds.
    """

    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout) as conn:
                conn.settimeout(settle)
                try:
                    return conn.recv(1) != b""
                except TimeoutError:
                    return True  # open and silent: a server that waits for us to speak
        except OSError:
            return False

    return probe


def http_probe(url: str, timeout: float = 1.0) -> Callable[[], bool]:
    """True when ``url`` answers 2xx (loopback URLs only, by the house rules)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - our own loopback URL
                status: int = answer.status
                return 200 <= status < 300
        except (OSError, ValueError):
            return False

    return probe


def wait_ready(
    managed: ManagedContainer, probe: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.1
) -> float:
    """Poll ``probe`` until it holds; seconds waited. Fails fast if the container exits."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if probe():
            return time.monotonic() - started
        state = managed.state()
        if state in ("exited", "dead"):
            tail = managed.logs(tail=5).strip().splitlines()
            if not tail:  # the log driver may lag the exit by a moment
                time.sleep(0.3)
                tail = managed.logs(tail=5).strip().splitlines()
            raise ContainerNotReady(
                f"container {managed.name} exited before it was ready",
                hint="last log line: " + (tail[-1] if tail else "(none)"),
            )
        if time.monotonic() > deadline:
            raise ContainerNotReady(
                f"container {managed.name} not ready after {timeout:.0f} s (state {state})",
                hint=f"docker logs {managed.name}",
            )
        time.sleep(interval)
