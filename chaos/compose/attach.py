"""Attach to a Compose project already running: ``roomquake run --attach compose:PROJECT``.

roomquake did not start the project and does not own it. Its containers are
found by the labels docker-compose puts on them (project, service,
container number) and named as roomquake names instances (``worker-2``).
Faults that need no proxy (kill, stop, pause, restart, disconnect, squeeze,
and the packet faults packet_loss and partition) act on them and are rolled
back as on every run; link faults are refused, since the project's
connections do not go through a fault proxy. Nothing is
renewed, scaled or taken down: the project is left as it was found.

Services, probes and selectors come from the experiment's stack file (the
project imported with ``roomquake stack import``); without one (a dead
runner's ledger replayed by ``roomquake clean``) from the project's own
Compose files, imported in memory.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.engine import id_of
from chaos.stack.containers import pause_retrying
from chaos.stack.errors import StackError
from chaos.stack.plan import InstancePlan, Plan
from chaos.stack.running import Backend, RunningStack
from chaos.stack.spec import Stack, load_stack

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container


PREFIX = "compose:"
# docker-compose's labels (1.x and 2.x alike)
PROJECT = "com.docker.compose.project"
SERVICE = "com.docker.compose.service"
NUMBER = "com.docker.compose.container-number"
ONEOFF = "com.docker.compose.oneoff"
CONFIG_FILES = "com.docker.compose.project.config_files"
WORKING_DIR = "com.docker.compose.project.working_dir"


def project_of(attach: str | None) -> str | None:
    """The project name of ``--attach compose:NAME``, else None (a roomquake run id)."""
    if attach and attach.startswith(PREFIX):
        return attach[len(PREFIX):]
    return None


def _instance_name(container: Container) -> tuple[str, str, int]:
    labels = container.labels
    service = labels[SERVICE]
    number = int(labels.get(NUMBER) or 1)
    return f"{service}-{number}", service, number


def project_containers(client: docker.DockerClient, project: str) -> dict[str, Container]:
    """Instance name -> container of every service container of ``project`` (one-off ``run`` containers left out)."""
    found = client.containers.list(all=True, filters={"label": f"{PROJECT}={project}"})
    out = {}
    for c in found:
        if c.labels.get(ONEOFF, "False") == "True" or SERVICE not in c.labels:
            continue
        out[_instance_name(c)[0]] = c
    if not out:
        running = sorted({c.labels.get(PROJECT, "") for c in client.containers.list(filters={"label": PROJECT})} - {""})
        known = f"running projects: {', '.join(running)}" if running else "no Compose project is running"
        raise StackError(f"no Compose project {project!r} has containers on this engine ({known})",
                         hint=f"start it with docker-compose -p {project} up -d")
    return out


class ComposeBackend(Backend):
    """Server-loss operations on a Compose project's containers; never starts new ones, never removes any."""

    kind = "docker"  # its instances are Docker containers: every container fault applies

    def __init__(self, client: docker.DockerClient, project: str, containers: dict[str, Container],
                 ports: dict[str, int | None]) -> None:
        self.client = client
        self.project = project
        self.containers = containers
        self.ports = ports  # instance -> the port its service listens on (the stack file's), None: none
        self._networks: dict[str, dict[str, Any]] = {}  # instance -> its endpoints as disconnect found them
        self._squeezed_from: dict[str, dict[str, int]] = {}

    # --- not for an attached project --------------------------------------------
    def plan(self, spec: Any, profile: str | None, secret: str = "", proxy_token: str = "") -> Plan:
        raise StackError(f"Compose project {self.project} is attached, not brought up by roomquake")

    def prepare(self, plan: Plan) -> None:
        raise StackError(f"Compose project {self.project} is attached, not brought up by roomquake")

    def launch(self, inst: InstancePlan) -> None:
        raise StackError(f"Compose project {self.project} is attached: roomquake starts no container in it")

    def teardown(self) -> None:
        raise StackError(f"roomquake does not take down Compose project {self.project}, which it did not start",
                         hint=f"docker-compose -p {self.project} down")

    def leftovers(self) -> list[str]:
        return []

    def record(self) -> dict[str, Any]:
        return {"compose_project": self.project, "containers": {n: c.id for n, c in self.containers.items()}}

    # --- what is there -----------------------------------------------------------
    def _c(self, name: str) -> Container:
        try:
            return self.containers[name]
        except KeyError:
            raise StackError(f"no container {name!r} in Compose project {self.project}") from None

    def _call(self, name: str, doing: str, action: Any, *args: Any, **kwargs: Any) -> Any:
        import docker

        try:
            return action(*args, **kwargs)
        except docker.errors.DockerException as err:
            raise StackError(f"{doing} {name} (Compose project {self.project}): {err}") from None

    def _reload(self, name: str) -> Container:
        c = self._c(name)
        self._call(name, "inspecting", c.reload)
        return c

    def state(self, name: str) -> str:
        import docker

        try:
            status = self._reload(name).status
        except (StackError, docker.errors.NotFound):
            return "missing"
        return {"running": "running", "restarting": "running", "paused": "paused"}.get(status, "exited")

    def address(self, name: str) -> tuple[str, int]:
        """Where the toolkit reaches the service directly: its port published on the host, else its bridge address."""
        port = self.ports.get(name)
        if port is None:
            raise StackError(f"{name} listens on no port (its service has port: null)")
        c = self._reload(name)
        for binding in (c.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{port}/tcp") or []:
            if binding.get("HostIp") in ("127.0.0.1", "0.0.0.0", "") and binding.get("HostPort"):
                return ("127.0.0.1", int(binding["HostPort"]))
        for net in (c.attrs.get("NetworkSettings", {}).get("Networks") or {}).values():
            if net.get("IPAddress"):
                return (net["IPAddress"], port)
        raise StackError(f"{name} has no address (is it running?)")

    def image_ids(self) -> dict[str, str]:
        return {name: str(c.attrs.get("Image", "")) for name, c in self.containers.items()}

    def exit_reason(self, name: str) -> str | None:
        return None if self.state(name) in ("running", "paused") else "exited"

    def log_text(self, name: str, lines: int) -> str:
        return bytes(self._call(name, "reading logs of", self._c(name).logs, tail=lines)).decode(errors="replace")

    def container_of(self, name: str) -> tuple[docker.DockerClient, str] | None:
        # None for a name the project does not run (its stack file's fault proxy: nothing is proxied here);
        # a container that is not running has no process, which the namespace lookup says
        container = self.containers.get(name)
        return (self.client, str(container.id)) if container is not None else None

    # --- server loss and the way back ---------------------------------------------
    def kill(self, name: str) -> None:
        self._call(name, "killing", self._c(name).kill)

    def stop(self, name: str) -> None:
        self._call(name, "stopping", self._c(name).stop, timeout=10)

    def start(self, name: str) -> None:
        if self.state(name) in ("running", "paused"):
            return
        self._call(name, "starting", self._c(name).start)

    def restart(self, name: str) -> None:
        self._call(name, "restarting", self._c(name).restart, timeout=10)

    def pause(self, name: str) -> None:
        import docker

        try:
            pause_retrying(self._c(name).pause)
        except docker.errors.APIError as err:
            raise StackError(f"pausing {name} (Compose project {self.project}): {err}") from None

    def resume(self, name: str) -> None:
        if self.state(name) == "paused":
            self._call(name, "resuming", self._c(name).unpause)

    def disconnect(self, name: str) -> None:
        """From every network of the project, keeping each endpoint's address and aliases for the way back."""
        c = self._reload(name)
        endpoints = dict(c.attrs.get("NetworkSettings", {}).get("Networks") or {})
        self._networks.setdefault(name, endpoints)
        for net in endpoints:
            self._call(name, "disconnecting", self.client.api.disconnect_container_from_network, c.id, net, force=True)

    def reconnect(self, name: str) -> None:
        """Back on its networks with the same aliases, and the same address where the engine allows it."""
        import docker

        c = self._reload(name)
        attached = set(c.attrs.get("NetworkSettings", {}).get("Networks") or {})
        endpoints = self._networks.pop(name, None) or self._project_networks(name)
        for net, endpoint in endpoints.items():
            if net in attached:
                continue
            aliases = endpoint.get("Aliases") or [c.labels[SERVICE]]
            ip = (endpoint.get("IPAMConfig") or {}).get("IPv4Address") or endpoint.get("IPAddress") or None
            try:  # the same address: open connections resume only then
                self.client.api.connect_container_to_network(id_of(c), net, ipv4_address=ip, aliases=aliases)
            except docker.errors.APIError as err:
                # The engine pins an address only on a network whose subnet its user configured; on Compose's
                # default network it picks one (usually the one just freed).
                if not ip or "user configured subnets" not in str(err):
                    raise StackError(f"reconnecting {name} (Compose project {self.project}): {err}") from None
                self._call(name, "reconnecting", self.client.api.connect_container_to_network, id_of(c), net,
                           aliases=aliases)

    def _project_networks(self, name: str) -> dict[str, dict[str, Any]]:
        """After a runner died mid-fault (ledger replay): the project's networks, the service name as alias."""
        nets = self.client.networks.list(filters={"label": f"{PROJECT}={self.project}"})
        return {n.name or id_of(n): {"Aliases": [self._c(name).labels[SERVICE]]} for n in nets}

    def squeeze(self, name: str, cpus: float | None = None, memory_mb: int | None = None) -> None:
        if cpus is None and memory_mb is None:
            raise StackError(f"squeeze {name}: give cpus, memory_mb or both")
        host = self._reload(name).attrs["HostConfig"]
        self._squeezed_from.setdefault(name, {k: int(host.get(k) or 0) for k in ("CpuQuota", "CpuPeriod", "Memory", "MemorySwap")})
        update: dict[str, int] = {}
        if cpus is not None:
            update.update(cpu_period=100_000, cpu_quota=max(1_000, int(cpus * 100_000)))
        if memory_mb is not None:
            update.update(mem_limit=memory_mb * 2**20, memswap_limit=memory_mb * 2**20)
        self._call(name, "squeezing", self._c(name).update, **update)

    def unsqueeze(self, name: str) -> None:
        """The limits from before the squeeze (after a dead runner: none, as the engine allows)."""
        before = self._squeezed_from.pop(name, None) or {"CpuQuota": 0, "CpuPeriod": 0, "Memory": 0, "MemorySwap": 0}
        update: dict[str, int] = {"cpu_period": before["CpuPeriod"] or 100_000, "cpu_quota": before["CpuQuota"] or -1}
        if before["Memory"]:
            update.update(mem_limit=before["Memory"], memswap_limit=before["MemorySwap"] or -1)
        else:  # a live container's memory limit cannot be unset (cgroup v1): the host's RAM is the same as none
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            update.update(mem_limit=total, memswap_limit=2 * total)
        self._call(name, "unsqueezing", self._c(name).update, **update)


def _derived_stack(containers: dict[str, Container], project: str) -> Stack:
    """The project's own Compose files (from its labels), imported in memory."""
    from chaos.compose import import_compose

    any_one = next(iter(containers.values()))
    folder = Path(any_one.labels.get(WORKING_DIR, ""))
    files = [folder / f for f in (any_one.labels.get(CONFIG_FILES) or "").split(",") if f]
    if not files or not all(f.is_file() for f in files):
        raise StackError(f"Compose project {project}: its Compose files are not readable here ({', '.join(map(str, files))})",
                         hint="name the imported stack file of the project")
    with tempfile.TemporaryDirectory(prefix="rq-compose-") as tmp:
        out = Path(tmp) / "stack.yaml"
        import_compose(files, out, name=project, environ=dict(os.environ))
        stack = load_stack(out)
    return Stack(spec=stack.spec, path=folder / "docker-compose.yml")


def attach_project(project: str, stack_file: str | Path | None = None) -> RunningStack:
    """A RunningStack over the running Compose ``project``; its services as the stack file (or its files) names them."""
    from chaos.engine import connect

    client = connect(timeout=30)
    containers = project_containers(client, project)
    stack = load_stack(stack_file) if stack_file is not None else _derived_stack(containers, project)
    spec = stack.spec
    ours = {n: c for n, c in containers.items() if c.labels[SERVICE] in spec.services}
    if not ours:
        served = sorted({c.labels[SERVICE] for c in containers.values()})
        raise StackError(f"Compose project {project} runs {', '.join(served)}; stack {spec.name} names none of them",
                         hint="give the experiment the stack file imported from this project")
    instances = []
    for name, c in sorted(ours.items()):
        _, service, number = _instance_name(c)
        svc = spec.services[service]
        instances.append(InstancePlan(name=name, service=service, replica=number, port=svc.port, bind="",
                                      host=str(c.name), command=[], env={}))
    plan = Plan(profile=spec.default_profile or "", instances=instances, proxies=[])
    backend = ComposeBackend(client, project, ours, {i.name: i.port for i in instances})
    running = RunningStack(stack, plan, backend, f"{PREFIX}{project}", proxy_url="")
    running.attached = True
    return running
