"""Swarm backend: every instance a single-task swarm service on the run's attachable overlay network.

Why one service per instance, not one per stack service with N replicas:
every link proxy dials one instance by name (``edge-2:8765``), and a swarm
task has no stable name of its own on an overlay (only
``<service>.<slot>.<task id>``, new on every replacement; aliases are per
service and templates do not reach them). So ``edge-2`` is the service
``rq-<run>-edge-2`` with the alias ``edge-2``; its current task is the
instance, whatever node it runs on. Services are labelled like containers
(io.roomquake.run, owner, service, instance), which is how ``stack down``,
``roomquake clean`` and the runner's ledger find them.

How the toolkit reaches instances without the routing mesh (no IPVS here):
each instance publishes its port in *host* mode on a port of its own, fixed
for the run (27000-29999, free in the swarm), so the address is "the task's
node address : that port" and stays the same when swarm replaces the task.
In a local cluster node addresses are on the host-only bridge; on a real
swarm they are the nodes' own addresses (keep them on a private network).

Instance faults: ``kill`` SIGKILLs the task's container through its node's
engine and holds the instance down (its service scaled to 0) until
``start``; ``stop`` scales to 0 (swarm stops the task gracefully); ``start``
scales back to 1 and waits for a running task; ``restart`` is swarm's forced
update (a new task); ``pause``/``resume``/``squeeze`` act on the task's
container through its node's engine. ``disconnect`` cuts the task off in its
own network namespace (iptables DROP of everything but loopback, both ways)
and ``reconnect`` removes those rules: a swarm task disconnected from its
network by the engine and connected again by hand loses its name on the
overlay (measured), while the rules leave it attached, its address and name
kept, so its flows resume as a docker container's do. Crashes that are not faults are restarted
by swarm after ``RESTART_DELAY_S``.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from typing import TYPE_CHECKING, Any

from chaos import labels as L
from chaos.errors import EngineError
from chaos.labels import RunIdentity
from chaos.stack.errors import StackError
from chaos.stack.plan import InstancePlan, Plan, docker_addressing, make_plan
from chaos.stack.running import Backend
from chaos.stack.spec import PlacementSpec, Stack, StackSpec, apply_scale
from chaos.stack.swarm_engines import SwarmEngines, SwarmGone
from chaos.stack import swarm_placement as placement
from chaos.stack import swarm_slots as slots

if TYPE_CHECKING:
    import docker

PORTS = range(27000, 30000)  # host-mode published ports on the nodes
RESTART_DELAY_S = 5.0  # swarm's own default; also the window in which kill holds an instance down
START_FAILURES = 3  # failed tasks of a restart: on-failure service that bring-up waits through
WAIT_S = 60.0  # a task to start or stop (the first task on a node prepares its overlay: slow under load)


def _fail(err: Exception, doing: str) -> StackError:
    from chaos.engine import failure

    return StackError(failure(err, doing).one_line())


def service_name(run_id: str, instance: str) -> str:
    return f"rq-{run_id}-{instance}"


def volume_name(run_id: str, instance: str) -> str:
    return f"rq-{run_id}-{instance}-data"  # the docker backend's name for the same thing


def choose_ports(run_id: str, names: list[str], taken: set[int]) -> dict[str, int]:
    """One published port per instance, free in the swarm, starting at a place drawn from the run id."""
    span = list(PORTS)
    start = int(hashlib.sha256(run_id.encode()).hexdigest(), 16) % len(span)
    free = (p for p in span[start:] + span[:start] if p not in taken)
    try:
        return {name: next(free) for name in names}
    except StopIteration:
        raise StackError(f"no free port left in {PORTS.start}-{PORTS.stop - 1} on the swarm for {len(names)} instances") from None


def _failed_lately(tasks: list[dict[str, Any]], within_s: float = 120.0) -> int:
    """Tasks that failed and were created in the last ``within_s`` (a bring-up's, not the killed ones of
    earlier experiments that swarm keeps in a service's history)."""
    import datetime

    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=within_s)).isoformat()[:19]
    return sum(1 for t in tasks if t.get("Status", {}).get("State") == "failed" and str(t.get("CreatedAt", ""))[:19] >= since)


class SwarmBackend(Backend):
    kind = "swarm"
    # A node's first task prepares the overlay there, and a loaded cluster's engines start tasks slowly:
    # bring-up waits twice the stack file's health timeouts (bring-up time, never a verdict's).
    health_timeout_scale = 2.0

    def __init__(self, stack: Stack, identity: RunIdentity, keep: bool = False, state: dict[str, Any] | None = None) -> None:
        from chaos.stack.docker import owner_identity

        self.stack = stack
        self.identity = identity = owner_identity(identity, keep)
        self.run_id = identity.run_id
        self.keep = keep
        state = state or {}
        self._recorded_swarm = state.get("swarm")
        self.gone: SwarmGone | None = None
        try:
            self.engines: SwarmEngines | None = SwarmEngines.choose(self._recorded_swarm)
        except SwarmGone as err:
            if not state:
                raise
            self.engines, self.gone = None, err  # stack down still forgets the run; nothing else works
        self.refs: dict[str, str] = dict(state.get("images", {}))
        self.services: dict[str, str] = dict(state.get("services", {}))  # instance -> service id
        self.ports: dict[str, int] = {k: int(v) for k, v in state.get("ports", {}).items()}
        self.constraints: dict[str, list[str]] = dict(state.get("constraints", {}))
        # reschedulable instances: their first node and the nodes their slot goes on once placed
        self.slots: dict[str, dict[str, Any]] = dict(state.get("slots", {}))
        self.network: dict[str, str] = dict(state.get("network", {}))
        self._squeezed: dict[str, Any] = {}  # instance -> ManagedContainer holding what squeeze took
        self._node_addr: dict[str, str] = {}

    @property
    def client(self) -> "docker.DockerClient":
        """The manager's client (raises once the run's local cluster is gone)."""
        return self._reach().manager

    def _reach(self) -> SwarmEngines:
        """The swarm's engines (raises once the run's local cluster is gone)."""
        if self.engines is None:
            assert self.gone is not None
            raise self.gone
        return self.engines

    @classmethod
    def from_record(cls, stack: Stack, run_id: str, state: dict[str, Any]) -> "SwarmBackend":
        identity = RunIdentity(run_id=run_id, pid=int(state["owner"]["pid"]), host=state["owner"]["host"])
        return cls(stack, identity, keep=bool(state.get("keep")), state=state)

    # --- planning and preparation ------------------------------------------------------

    def nodes(self) -> list[placement.Node]:
        try:
            return [placement.Node.from_attrs(n.attrs) for n in self.client.nodes.list()]
        except Exception as err:  # noqa: BLE001 - docker errors and transport errors alike
            raise _fail(err, "listing the swarm's nodes") from err

    def plan(self, spec: StackSpec, profile: str | None, secret: str = "", proxy_token: str = "") -> Plan:
        nodes = self.nodes()
        spec = apply_scale(spec, placement.replica_counts(spec, nodes))
        plan = make_plan(spec, profile, docker_addressing(f"{spec.proxy.service}-1", spec.proxy.listeners_from),
                         secret=secret, proxy_token=proxy_token)
        names = [i.name for i in plan.instances if i.port]  # a worker on no port publishes nothing
        kept = {n: p for n, p in self.ports.items() if n in names}  # a renewed stack keeps its proxy and its ports
        fresh = choose_ports(self.run_id, [n for n in names if n not in kept], self._taken_ports() | set(kept.values()))
        self.ports = {**kept, **fresh}
        owner = slots.owner_value(self.identity)
        where = {i.name: placement.place(i.service, self._placement(spec, i.service), i.replica, nodes,
                                         slot=slots.constraint(self.run_id, i.name, owner))
                 for i in plan.instances}
        self.constraints = {name: w.constraints for name, w in where.items()}
        self.slots = {name: {"home": w.home, "spares": list(w.spares), "owner": owner}
                      for name, w in where.items() if w.reschedulable}
        return plan

    @staticmethod
    def _placement(spec: StackSpec, service: str) -> PlacementSpec | None:
        """The service's placement; an instance with kept data is pinned to a node, since its volume lives there."""
        svc = spec.services[service]
        if svc.volume:
            if svc.placement and (svc.placement.spread or svc.placement.per_node):
                return svc.placement.model_copy(update={"reschedule": False})
            return PlacementSpec(spread=True, reschedule=False,
                                 constraints=list(svc.placement.constraints) if svc.placement else [])
        return svc.placement

    def _taken_ports(self) -> set[int]:
        taken: set[int] = set()
        for svc in self.client.api.services():
            for port in svc.get("Spec", {}).get("EndpointSpec", {}).get("Ports", []) or []:
                if port.get("PublishedPort"):
                    taken.add(int(port["PublishedPort"]))
        return taken

    def prepare(self, plan: Plan) -> None:
        """Images on the nodes, and the run's overlay network, before any service is created."""
        self._resolve_images(plan)
        self._create_network()

    def _resolve_images(self, plan: Plan) -> None:
        from chaos.cluster.images import has_image, host_engine
        from chaos.stack.containers import context_image

        needed = {self.stack.spec.services[i.service].image for i in plan.instances}
        contexts = {n for n in needed if self.stack.spec.images[n].context}
        builds = {n for n in needed if self.stack.spec.images[n].build}
        with host_engine() as host:
            for name in sorted(contexts):  # a Compose import's build contexts: built offline here, then loaded
                self.refs[name] = context_image(host, self.stack, name)
            if builds:
                from chaos.images import ensure_images

                images = ensure_images(host)
                for name in builds:
                    self.refs[name] = images.ref(self.stack.spec.images[name].build or name)
            for name in needed - builds - contexts:
                self.refs[name] = self.stack.spec.images[name].tag or ""
            self._images_on_nodes(host, sorted(set(self.refs.values())), has_image)

    def _images_on_nodes(self, host: "docker.DockerClient", refs: list[str], has_image: Any) -> None:
        """Every node whose engine we reach gets the images it lacks (nothing is ever pulled)."""
        from chaos.cluster.daemon import RUN_ROOT
        from chaos.cluster.images import load_from

        for node in self.nodes():
            url = self._reach().node_urls.get(node.id)
            if url is None or not node.ready:
                continue  # a real swarm's node we cannot reach: its images are its operator's business
            engine = self._reach().node(node.id, "loading images")
            lacking = [ref for ref in refs if not has_image(engine, ref)]
            if not lacking:
                continue
            if not url.startswith(f"unix://{RUN_ROOT}/"):
                raise StackError(f"swarm node {node.hostname or node.id} lacks {', '.join(lacking)}",
                                 hint="load it there (docker save | docker load) or use an image from a registry")
            for ref in lacking:
                if not has_image(host, ref):
                    raise StackError(f"missing image {ref!r}: build or load it first; nothing is pulled")
                load_from(host, ref, engine)

    def _create_network(self) -> None:
        if self.network:
            return
        name = f"rq-{self.run_id}"
        try:
            net = self.client.networks.create(name, driver="overlay", attachable=True, scope="swarm",
                                              labels=self.identity.labels())
        except Exception as err:  # noqa: BLE001
            raise _fail(err, f"creating overlay network {name}") from err
        self.network = {"id": str(net.id), "name": name}

    # --- lifecycle -----------------------------------------------------------------------

    def launch(self, inst: InstancePlan) -> None:
        from docker.types import DNSConfig, EndpointSpec, Mount, NetworkAttachmentConfig, RestartPolicy, ServiceMode

        svc = self.stack.spec.services[inst.service]
        options = svc.container
        labels = self.identity.labels(**{L.SERVICE: inst.service, L.INSTANCE: inst.name})
        name = service_name(self.run_id, inst.name)
        mounts = []
        if svc.volume:  # kept for the run on the instance's node; teardown removes it through the node's engine
            mounts.append(Mount(target=svc.volume, source=volume_name(self.run_id, inst.name), type="volume", labels=labels))
        for m in options.mounts if options else []:
            # A bind mount of the project's file: the path must exist on the task's node. It does on a local
            # cluster (its nodes share this machine's files); on a real swarm, put the project there first.
            mounts.append(Mount(target=m.target, source=str((self.stack.root / m.source).resolve()), type="bind",
                                read_only=m.read_only))
        # types-docker says the published port is a str; docker takes the int (its docs' own example)
        published = {self.ports[inst.name]: (inst.port, "tcp", "host")} if inst.port else None
        slot = self.slots.get(inst.name)
        if slot:  # its own node label, on its first node only until it is placed
            slots.put(self.client, [slot["home"]], slots.key(self.run_id, inst.name), slot["owner"])
        try:
            created = self.client.services.create(
                self.refs[svc.image],
                # As the docker backend: an entrypoint replaces the image's, a command its CMD, and neither
                # given keeps the image's own (swarm's "command" is the entrypoint, its "args" the CMD).
                command=inst.entrypoint,
                args=inst.command or None,
                name=name,
                env=inst.env,
                hostname=inst.name,
                init=True,
                labels=labels,
                container_labels=labels,
                user=options.user if options else None,
                workdir=options.workdir if options else None,
                networks=[NetworkAttachmentConfig(target=self.network["id"],
                                                  aliases=[inst.name, *(options.aliases if options else [])])],
                endpoint_spec=EndpointSpec(mode="dnsrr", ports=published),  # type: ignore[arg-type]
                mode=ServiceMode("replicated", replicas=1),
                restart_policy=RestartPolicy(condition="on-failure" if svc.restart == "on-failure" else "none",
                                             delay=int(RESTART_DELAY_S * 1e9)),
                mounts=mounts,
                stop_grace_period=int(svc.stop_timeout_s * 1e9),
                constraints=self.constraints.get(inst.name) or None,
                # An explicit ndots makes the engine's DNS answer a one-label name it does not know
                # (a stopped instance's) at once instead of asking the outside: in a cluster that
                # cannot reach the outside that took ~10 s per lookup (measured), and a proxy dialing
                # a killed edge stalled every other connection behind those lookups.
                dns_config=DNSConfig(options=["ndots:0"]),
            )
        except Exception as err:  # noqa: BLE001
            raise _fail(err, f"creating swarm service {name}") from err
        self.services[inst.name] = str(created.id)
        self._wait_placed(inst.name)
        if slot:  # placed: the other eligible nodes may take it from now on, should its node be lost
            slots.put(self.client, slot["spares"], slots.key(self.run_id, inst.name), slot["owner"])

    def _wait_placed(self, name: str, timeout: float = WAIT_S) -> None:
        """Until the scheduler has put the instance's task on a node (its address is known from then on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self._task(name)
            if task is not None and task.get("NodeID"):
                return
            time.sleep(0.05)
        task = self._task(name) or {}
        why = task.get("Status", {}).get("Err") or task.get("Status", {}).get("Message") or "no task yet"
        raise StackError(f"swarm backend: {name} was not placed on any node within {timeout:g}s ({why})")

    # --- what runs where -----------------------------------------------------------------

    def _service_id(self, name: str) -> str:
        try:
            return self.services[name]
        except KeyError:
            raise StackError(f"swarm backend: {name!r} has no service in run {self.run_id}") from None

    def _inspect(self, name: str) -> dict[str, Any] | None:
        import docker

        try:
            return dict(self.client.api.inspect_service(self._service_id(name)))
        except docker.errors.NotFound:
            return None

    def _replicas(self, spec: dict[str, Any]) -> int:
        return int(spec["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 1))

    def _tasks(self, name: str) -> list[dict[str, Any]]:
        """Every task of the instance's service that swarm still lists (its history too)."""
        import docker

        try:
            return list(self.client.api.tasks(filters={"service": self._service_id(name)}))
        except docker.errors.NotFound:
            return []

    def _task(self, name: str, tasks: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """The instance's newest task (the running one if any), from ``tasks`` if already read."""
        tasks = self._tasks(name) if tasks is None else tasks
        if not tasks:
            return None
        running = [t for t in tasks if t.get("Status", {}).get("State") == "running"]
        pool = running or tasks
        newest: dict[str, Any] = max(pool, key=lambda t: (t.get("Version", {}).get("Index", 0)))
        return newest

    def _container(self, name: str, doing: str) -> tuple["docker.DockerClient", str]:
        task = self._task(name)
        if task is None or task.get("Status", {}).get("State") != "running":
            raise StackError(f"{doing} {name}: it has no running task")
        container = task["Status"].get("ContainerStatus", {}).get("ContainerID", "")
        return self._reach().node(task["NodeID"], f"{doing} {name}"), container

    def node_of(self, name: str) -> str | None:
        """The swarm node id the instance's current task is on (None: no task placed)."""
        task = self._task(name)
        return str(task["NodeID"]) if task and task.get("NodeID") else None

    def container_of(self, name: str) -> tuple[docker.DockerClient, str] | None:
        """The engine of the node running the instance's task, and its container (None: no running task)."""
        task = self._task(name)
        if task is None or task.get("Status", {}).get("State") != "running":
            return None
        return self._container(name, "reaching")

    def state(self, name: str) -> str:
        import docker
        import requests

        if name not in self.services or self.engines is None:
            return "missing"
        spec = self._inspect(name)
        if spec is None:
            return "missing"
        if self._replicas(spec) == 0:
            return "exited"
        task = self._task(name)
        if task is None or task.get("Status", {}).get("State") != "running":
            return "exited"
        url = self.engines.node_urls.get(task["NodeID"])
        if url is None:
            return "running"  # cannot see the container; the task runs
        try:
            engine = self.engines.node(task["NodeID"], f"inspecting {name}")
            status = engine.api.inspect_container(task["Status"]["ContainerStatus"]["ContainerID"])["State"]
        except (docker.errors.DockerException, KeyError, StackError):
            return "running"
        except requests.exceptions.ConnectionError:
            return "exited"  # its node's engine is gone (a lost node): the manager has not noticed yet
        return "paused" if status.get("Paused") else "running" if status.get("Running") else "exited"

    def exit_reason(self, name: str) -> str | None:
        """Why bring-up should stop waiting: the newest task was rejected (e.g. no such image), or failed more
        than ``START_FAILURES`` times under ``restart: on-failure`` (once without it).

        A service that restarts on failure gets the tries Compose's restart policy would give it: a task
        that reads a name another node has only just published (the overlay's DNS follows a task's health
        across nodes with a lag, seen beside a CPU hog: nginx's upstream not found) comes in on a later one.
        """
        tasks = self._tasks(name)
        task = self._task(name, tasks)
        if task is None:
            return None if self._inspect(name) is not None else "its swarm service is gone"
        status = task.get("Status", {})
        state = status.get("State")
        if state not in ("failed", "rejected"):
            return None
        why = f"task {state}: {status.get('Err') or status.get('Message', '')}; {self.log_tail(name)}"
        if state == "rejected" or self.stack.spec.services[self._service_of(name)].restart != "on-failure":
            return why
        failed = _failed_lately(tasks)
        # swarm starts another task after RESTART_DELAY_S
        return None if failed < START_FAILURES else f"{why} ({failed} failed task(s))"

    def log_text(self, name: str, lines: int) -> str:
        engine, container = self._container(name, "reading the logs of")
        return bytes(engine.api.logs(container, tail=lines)).decode(errors="replace")

    def _node_address(self, node_id: str) -> str:
        if node_id not in self._node_addr:
            self._node_addr = {n.id: n.address for n in self.nodes()}
        return self._node_addr.get(node_id, "")

    def address(self, name: str) -> tuple[str, int]:
        task = self._task(name)
        if task is None or not task.get("NodeID"):
            raise StackError(f"swarm backend: {name} has no task on any node yet")
        if name not in self.ports:
            raise StackError(f"{name} listens on no port (its service has port: null)")
        host = self._node_address(task["NodeID"])
        if not host:
            raise StackError(f"swarm backend: node {task['NodeID'][:12]} of {name} has no address")
        return host, self.ports[name]

    # --- instance faults -------------------------------------------------------------------

    def _scale(self, name: str, replicas: int) -> None:
        import docker

        for _ in range(5):  # the service's version moves when swarm updates it: read, write, retry
            try:
                service = self.client.services.get(self._service_id(name))
                if self._replicas(service.attrs) == replicas:
                    return
                service.scale(replicas)
                return
            except docker.errors.APIError as err:
                if "out of sequence" not in str(err):
                    raise _fail(err, f"scaling {name} to {replicas}") from err
        raise StackError(f"scaling {name} to {replicas}: the service kept changing under us")

    def _wait(self, name: str, running: bool, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self._task(name)
            is_running = task is not None and task.get("Status", {}).get("State") == "running"
            if running and is_running and task is not None and task.get("DesiredState") == "running":
                return
            if not running and not is_running:
                return
            time.sleep(0.1)
        raise StackError(f"{name}: its task did not {'start' if running else 'stop'} within {timeout:g}s")

    def _guard(self, name: str, doing: str, call: Any) -> None:
        import docker

        try:
            call()
        except docker.errors.APIError as err:
            if "is not running" in str(err) or "is already" in str(err) or "No such container" in str(err):
                return
            raise _fail(err, f"{doing} {name}") from err
        except EngineError as err:
            raise StackError(f"{doing} {name}: {err.one_line()}") from None

    def kill(self, name: str) -> None:
        """SIGKILL the task's container, then hold the instance down until ``start``."""
        task = self._task(name)
        if task is not None and task.get("Status", {}).get("State") == "running":  # else it is down already
            engine, container = self._container(name, "killing")
            self._guard(name, "killing", lambda: engine.api.kill(container, signal="SIGKILL"))
        self._scale(name, 0)

    def stop(self, name: str) -> None:
        self._scale(name, 0)
        self._wait(name, running=False, timeout=self.stack.spec.services[self._service_of(name)].stop_timeout_s + WAIT_S)

    def start(self, name: str) -> None:
        if self.state(name) in ("running", "paused"):
            return
        spec = self._inspect(name)
        if spec is not None and self._replicas(spec) > 0:
            # Down by itself (a crash under restart: no): swarm will not replace it, a forced update does.
            self._force_update(name)
        else:
            self._scale(name, 1)
        self._wait(name, running=True)

    def _force_update(self, name: str) -> None:
        try:
            self.client.services.get(self._service_id(name)).force_update()
        except Exception as err:  # noqa: BLE001
            raise _fail(err, f"starting {name} again") from err

    def remove(self, name: str) -> None:
        """Remove the instance's service and its kept data (``renew`` launches its successor under the same name)."""
        import docker

        from chaos.stack.swarm_clean import remove_volumes

        sid = self.services.pop(name, None)
        if sid is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_service(sid)
        if self.engines is not None:  # its slot, if it had one (the new plan may not say): a successor's starts anew
            slots.clear(self.client, slots.key(self.run_id, name))
        if self.stack.spec.services[self._service_of(name)].volume and self.engines is not None:
            deadline = time.monotonic() + WAIT_S
            query = {"label": f"{L.RUN}={self.run_id}", "name": volume_name(self.run_id, name)}
            while time.monotonic() < deadline:  # refused while the task's container still holds it
                nodes = self.engines.all_nodes()
                for node in nodes:
                    remove_volumes(node, query)
                if not any((n.api.volumes(filters=query) or {}).get("Volumes") for n in nodes):
                    return
                time.sleep(0.3)
            raise StackError(f"removing {name}: its volume {volume_name(self.run_id, name)} is still in use")

    def restart(self, name: str) -> None:
        spec = self._inspect(name)
        if spec is None:
            raise StackError(f"restarting {name}: its swarm service is gone")
        if self._replicas(spec) == 0:
            self.start(name)
            return
        old = (self._task(name) or {}).get("ID")
        self._force_update(name)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            task = self._task(name)
            if task and task.get("ID") != old and task.get("Status", {}).get("State") == "running":
                return
            time.sleep(0.1)
        raise StackError(f"restarting {name}: no new task ran within {WAIT_S:g}s")

    def pause(self, name: str) -> None:
        from chaos.stack.containers import pause_retrying

        engine, container = self._container(name, "pausing")
        # the freezer's "unable to freeze" on a loaded node is asked again, as on docker
        self._guard(name, "pausing", lambda: pause_retrying(lambda: engine.api.pause(container)))

    def resume(self, name: str) -> None:
        if self.state(name) != "paused":
            return
        engine, container = self._container(name, "resuming")
        self._guard(name, "resuming", lambda: engine.api.unpause(container))

    CUT: tuple[tuple[str, ...], ...] = (("INPUT", "!", "-i", "lo"), ("OUTPUT", "!", "-o", "lo"))

    def _cut_tag(self, name: str) -> str:
        from chaos.faults import iptables

        return iptables.tag(self.run_id, f"disconnect-{name}")

    def disconnect(self, name: str) -> None:
        """Every packet in or out of the task but its loopback dropped, in its namespace (see the module's notes)."""
        from chaos.faults import iptables
        from chaos.stack.netns import located_namespace

        iptables.require()
        found = located_namespace(self.container_of(name), name)
        if found is None:
            raise StackError(f"disconnecting {name}: it has no running task")
        tag = self._cut_tag(name)
        try:
            iptables.add(found.pid, list(self.CUT), tag)
        except BaseException:
            iptables.remove(found.pid, tag)  # half a cut is not left behind
            raise

    def reconnect(self, name: str) -> None:
        """The disconnect's rules removed (none there, or a task that is gone: nothing to do)."""
        from chaos.faults import iptables
        from chaos.stack.netns import located_namespace

        found = located_namespace(self.container_of(name), name)
        if found is not None:
            iptables.remove(found.pid, self._cut_tag(name))

    def _managed(self, name: str, doing: str) -> Any:
        from chaos.stack.containers import ContainerSpec, ManagedContainer

        engine, container_id = self._container(name, doing)
        held = self._squeezed.get(name)
        if held is not None and held.container.id == container_id:
            return held
        container = engine.containers.get(container_id)
        spec = ContainerSpec(image="", name=name, service=self._service_of(name), instance=name)
        return ManagedContainer(container=container, spec=spec, network=None, ip=None, host_ports={})

    def squeeze(self, name: str, cpus: float | None = None, memory_mb: int | None = None) -> None:
        if cpus is None and memory_mb is None:
            raise StackError(f"squeeze {name}: give cpus, memory_mb or both")
        managed = self._managed(name, "squeezing")
        try:
            managed.squeeze(cpus=cpus, memory_mb=memory_mb)
        except EngineError as err:
            raise StackError(f"squeezing {name}: {err.one_line()}") from None
        self._squeezed[name] = managed

    def unsqueeze(self, name: str) -> None:
        managed = self._managed(name, "unsqueezing")
        if managed._squeezed_from is None:  # squeezed by another process (attached): lift the limits
            managed._squeezed_from = {"CpuQuota": 0, "CpuPeriod": 0, "Memory": 0, "MemorySwap": 0}
        try:
            managed.unsqueeze()
        except EngineError as err:
            raise StackError(f"unsqueezing {name}: {err.one_line()}") from None
        self._squeezed.pop(name, None)

    def _service_of(self, name: str) -> str:
        return name.rsplit("-", 1)[0]

    # --- the rest ----------------------------------------------------------------------------

    def image_ids(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, ref in self.refs.items():
            with contextlib.suppress(Exception):
                out[name] = str(self.client.images.get(ref).id)
        return out

    def teardown(self) -> None:
        """Remove the run's services, then (once their tasks are gone) its network and configs, all by label."""
        from chaos.stack.swarm_clean import remove_run

        if self.engines is None:
            return  # the cluster went down with every service on it
        remove_run(self.client, self.run_id, nodes=self.engines.all_nodes())

    def leftovers(self) -> list[str]:
        from chaos.stack.swarm_clean import run_resources

        if self.engines is None:
            return []
        return [f"{kind} {name}" for kind, _, name in run_resources(self.client, self.run_id, self.engines.all_nodes())]

    def record(self) -> dict[str, Any]:
        return {
            "owner": {"pid": self.identity.pid, "host": self.identity.host},
            "keep": self.keep,
            "swarm": self.engines.record() if self.engines is not None else self._recorded_swarm,
            "network": self.network,
            "services": self.services,
            "ports": self.ports,
            "constraints": self.constraints,
            "slots": self.slots,
            "images": self.refs,
        }
