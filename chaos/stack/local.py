"""Local backend: every instance a process on loopback, in its own process group.

Instances are forked by the run's fork server (chaos.forkserver),
which imports the stack file's ``preload`` modules once: a Python instance
starts in milliseconds instead of paying for its interpreter and imports.
Each instance leads its own session, so its pid is also its process-group
id: signals go to the whole group (a service that forks is still stopped
completely) and teardown ends exactly what we started, by id. The server
appends every child to the run's births file before the child may run, and
is itself in the run's record (``procs["forkserver"]``) before it forks
anything, so a runner killed at any instant leaves nothing unrecorded.
Faults map to signals: kill=SIGKILL, stop=SIGTERM then SIGKILL, pause=
SIGSTOP, resume=SIGCONT. Processes have no network or cgroup of their own
here, so disconnect and squeeze raise ``Unsupported`` (use a link fault, or
the docker backend).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from chaos.labels import proc_stat, process_start_time
from chaos.stack import registry
from chaos.stack.errors import StackError, Unsupported
from chaos.forkserver import KEEPER_MARK, ROOM_ENV, ForkClient, ForkServerError, environ_room, wait_line
from chaos.stack.running import Backend
from chaos.stack.plan import InstancePlan, Plan, local_addressing, make_plan, ports_needed
from chaos.stack.ports import free_ports, release_ports
from chaos.stack.spec import Stack, StackSpec

SERVER = "forkserver"  # its key in ``procs`` (instance names always end in -<replica>)
SERVER_START_S = 120.0  # importing the preload list on a starved machine; failing beyond that is kinder


def _proc_state(pid: int, start: str) -> str:
    """running | paused | exited, from /proc (guards against pid reuse with the start time)."""
    fields = proc_stat(pid)
    if len(fields) <= 19 or fields[19] != start:
        return "exited"
    code = fields[0]
    if code in ("Z", "X", "x"):
        return "exited"
    if code in ("T", "t"):
        return "paused"
    return "running"


def preload_modules(spec: StackSpec) -> list[str]:
    """Every service's ``preload`` list once, the proxy's first: locally one interpreter serves every service."""
    out: list[str] = []
    proxy = spec.services.get(spec.proxy.service)
    for svc in [proxy, *spec.services.values()] if proxy else spec.services.values():
        out += [m for m in svc.preload if m not in out]
    return out


KILL_WAIT_S = 30.0  # SIGKILL to a group being gone; seconds only on a loaded machine
PAUSE_WAIT_S = 30.0  # SIGSTOP to every process of the group stopped; as long, for the same reason


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, stack: Stack, run_id: str, procs: dict[str, dict[str, Any]] | None = None) -> None:
        self.stack = stack
        self.run_id = run_id
        self.procs: dict[str, dict[str, Any]] = procs or {}  # name -> pid, start, argv, env, port, stop_timeout
        self.logs = registry.state_dir() / run_id / "logs"  # created by prepare()
        self.births = self.logs.parent / "births"  # the fork server's at-birth record
        # Set by the owner (bring-up, RunningStack): write the run record now, and the runner's checkpoint.
        self.record_now: Callable[[], None] = lambda: None
        self.checkpoint: Callable[[], None] = lambda: None
        self._server: subprocess.Popen[bytes] | None = None  # the fork server, when this process started it
        self._client: ForkClient | None = None
        self._lock = threading.RLock()

    # --- planning --------------------------------------------------------------

    def plan(self, spec: StackSpec, profile: str | None, secret: str = "", proxy_token: str = "",
             like: Plan | None = None) -> Plan:
        """Free loopback ports for every instance and listener; with ``like`` (a renewal), its ports where it has
        the same instances and proxies, so that the link proxies stay as they are."""
        data_root = str(registry.state_dir() / self.run_id / "data")
        ports = free_ports(ports_needed(spec), owner=registry.state_dir() / self.run_id)  # leased until teardown
        fresh = make_plan(spec, profile, local_addressing(ports, data_root), secret, proxy_token)
        if like is None or [i.name for i in like.instances] != [i.name for i in fresh.instances] \
                or [p.name for p in like.proxies] != [p.name for p in fresh.proxies]:
            return fresh
        # Addressing hands ports out in plan order (instances, then listeners): the same order gives the same ports.
        ports = [i.port for i in like.instances if i.port is not None] + [int(p.listen.rsplit(":", 1)[1]) for p in like.proxies]
        return make_plan(spec, profile, local_addressing(ports, data_root), secret, proxy_token)

    def _argv(self, command: list[str]) -> list[str]:
        head = sys.executable if command[0] in ("python", "python3") else shutil.which(command[0])
        if head is None:
            raise StackError(f"local backend: {command[0]!r} is not on PATH (install it or use --backend docker)")
        return [head, *command[1:]]

    def prepare(self, plan: Plan) -> None:
        """Check every program exists, then start the fork server (it imports while the run is recorded)."""
        for inst in plan.instances:
            self._argv(inst.command)
        self.logs.mkdir(parents=True, exist_ok=True)
        self._start_server([self._own_env(inst) for inst in plan.instances])

    def _own_env(self, inst: InstancePlan) -> dict[str, str]:
        """What this instance adds to the environment (recorded; the rest is os.environ at spawn)."""
        env = self._base_env()
        env.update(inst.env)
        return env

    def _base_env(self) -> dict[str, str]:
        paths = [str((self.stack.root / p).resolve()) for p in self.stack.spec.local.pythonpath]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        return {"PYTHONUNBUFFERED": "1", **({"PYTHONPATH": os.pathsep.join(paths)} if paths else {})}

    @staticmethod
    def _full_env(own: dict[str, str]) -> dict[str, str]:
        # The user's environment is inherited but never written to the run record (it may hold secrets).
        env = {k: v for k, v in os.environ.items() if not k.startswith("RQ_")}
        env.update(own)
        return env

    # --- the fork server -------------------------------------------------------------

    def _start_server(self, envs: list[dict[str, str]]) -> None:
        """Start this run's fork server; it forks nothing before ``_go`` (after the record names it)."""
        import secrets

        address = f"roomquake-{self.run_id}-{secrets.token_hex(4)}"
        modules = preload_modules(self.stack.spec)
        argv = [sys.executable, "-m", "chaos.forkserver", "--address", address, "--births", str(self.births),
                "--preload", ",".join(modules), "--run", self.run_id]
        env = self._full_env({**self._base_env(), ROOM_ENV: environ_room(envs)})
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{SERVER}.log", "ab") as log:
            server = subprocess.Popen(argv, env=env, cwd=str(self.stack.root), stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        self._server = server
        self._client = None
        self.procs[SERVER] = {"pid": server.pid, "start": process_start_time(server.pid), "address": address,
                              "argv": argv, "preload": modules}

    def _go(self) -> None:
        """Let the server we started serve (it is in the run record by now) and wait until it does."""
        server = self._server
        assert server is not None and server.stdin is not None and server.stdout is not None
        try:
            server.stdin.write(b"go\n")
            server.stdin.close()
        except OSError:
            pass  # it is gone: its stdout says why
        try:
            line = wait_line(server.stdout, SERVER_START_S, self.checkpoint)
        except TimeoutError:
            raise StackError(f"local backend: the fork server did not start within {SERVER_START_S:g}s") from None
        server.stdout.close()
        if line.startswith("error "):
            raise StackError(f"local backend: fork server: {line[len('error '):]}")
        if line != "ok":
            tail = self.log_tail(SERVER)
            raise StackError(f"local backend: the fork server ended before serving{'; ' + tail if tail else ''}")

    def _preload_error(self, name: str, problem: str) -> str:
        """The server's import problem, naming the stack file field that asked for the module."""
        service = self.stack.spec.services[name.rsplit("-", 1)[0]]
        module = next((m for m in service.preload if f"{m!r}" in problem), None)
        field = f"services.{name.rsplit('-', 1)[0]}.preload" + (f".{service.preload.index(module)}" if module else "")
        return f"{self.stack.path}: {field}: {problem}"

    def _connect(self) -> ForkClient:
        """The connection to this run's fork server, starting one when it is gone (recorded first)."""
        with self._lock:
            if self._client is not None and not self._client.closed:
                return self._client
            rec = self.procs.get(SERVER)
            if self._server is not None and self._server.stdin is not None and not self._server.stdin.closed:
                self._go()
            elif rec is None or _proc_state(int(rec["pid"]), rec["start"]) != "running":
                # Gone (or a record from before fork servers): a new one, in the record before it forks.
                self._start_server([self._full_env(r["env"]) for n, r in self.procs.items() if n != SERVER])
                self.record_now()
                self._go()
            rec = self.procs[SERVER]
            try:
                self._client = ForkClient.connect(rec["address"], pid=int(rec["pid"]))
            except ForkServerError as err:
                raise StackError(f"local backend: {err}") from None
            return self._client

    # --- lifecycle -------------------------------------------------------------

    def launch(self, inst: InstancePlan) -> None:
        self.launch_all([inst])

    def launch_all(self, insts: list[InstancePlan]) -> None:
        """Fork these instances (each recorded in the births file before it runs); the owner records them next."""
        for inst in insts:
            svc = self.stack.spec.services[inst.service]
            if svc.volume:  # kept for the run: under the run's folder, removed with it
                (self.logs.parent / "data" / inst.name).mkdir(parents=True, exist_ok=True)
            self.procs[inst.name] = {
                "argv": self._argv(inst.command),
                "keeper": svc.restart == "on-failure",
                "env": self._own_env(inst),
                "port": inst.port,
                "stop_timeout": svc.stop_timeout_s,
                "flush": bool(svc.volume),  # its data must be written out when it stops: SIGTERM, never SIGKILL alone
                "cwd": str(self.stack.root),
                "needs": list(svc.preload),
            }
        self._spawn_all([inst.name for inst in insts])

    def _spawn(self, name: str) -> None:
        self._spawn_all([name])

    def _spawn_all(self, names: list[str]) -> None:
        """Ask the fork server for all of them at once; record each pid (the first failure is raised after)."""
        if not names:
            return
        client = self._connect()
        batch = []
        for name in names:
            rec = self.procs[name]
            batch.append({"op": "spawn", "name": name, "argv": rec["argv"], "env": self._full_env(rec["env"]),
                          "cwd": rec["cwd"], "log": str(self.logs / f"{name}.log"), "keeper": bool(rec.get("keeper")),
                          "needs": rec.get("needs") or []})
        try:
            replies = client.requests(batch, timeout=SERVER_START_S, checkpoint=self.checkpoint)
        except ForkServerError as err:
            raise StackError(f"local backend: starting {', '.join(names)}: {err}") from None
        failure = None
        for name, reply in zip(names, replies):
            if "error" in reply:
                problem = str(reply["error"])
                if failure is None:
                    failure = (self._preload_error(name, problem) if "cannot import" in problem or "started a thread"
                               in problem else f"local backend: starting {name}: {problem}")
                continue
            rec = self.procs[name]
            rec["crashes_before"] = 0
            rec["crashes_before"] = self.crashes(name)  # only crashes of this spawn count
            rec["pid"] = int(reply["pid"])
            rec["start"] = str(reply["start"])
        if failure is not None:
            raise StackError(failure)

    def readiness(self) -> Callable[[float], set[str]]:
        """``wait(timeout) -> names``: instances that said they are ready (RQ_READY_FD) or exited since this call."""
        client = self._connect()
        mark = client.mark

        def wait(timeout: float) -> set[str]:
            nonlocal mark
            events, mark = client.events_after(mark, timeout)
            return {str(e["name"]) for e in events if e.get("event") in ("ready", "exit")}

        return wait

    def _rec(self, name: str) -> dict[str, Any]:
        try:
            return self.procs[name]
        except KeyError:
            raise StackError(f"local backend: {name!r} was never started") from None

    def state(self, name: str) -> str:
        rec = self.procs.get(name)
        if not rec or "pid" not in rec:
            return "missing"
        return _proc_state(int(rec["pid"]), rec["start"])

    def crashes(self, name: str) -> int:
        """How often the keeper restarted this instance (its log says so)."""
        try:
            total = (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace").count(KEEPER_MARK)
        except OSError:
            return 0
        return total - int(self.procs.get(name, {}).get("crashes_before", 0))

    def exit_reason(self, name: str) -> str | None:
        if self.state(name) in ("running", "paused"):
            crashed = self.crashes(name)
            return f"crashed {crashed} time(s) and is being restarted; {self.log_tail(name)}" if crashed else None
        return f"exited; {self.log_tail(name)}"

    def log_text(self, name: str, lines: int) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def address(self, name: str) -> tuple[str, int]:
        return "127.0.0.1", int(self._rec(name)["port"])

    def _signal_group(self, name: str, sig: int) -> bool:
        """Signal the instance's process group; False when nothing of it is left."""
        rec = self._rec(name)
        pid = rec.get("pid")
        if pid is None:
            return False
        return _signal_pgid(int(pid), rec.get("start", ""), sig, name)

    def _wait_gone(self, name: str, timeout: float) -> bool:
        """Wait until no process of the instance's group is left (its leader first, then e.g. a keeper's child)."""
        deadline = time.monotonic() + timeout
        pgid = int(self._rec(name).get("pid", 0))
        while time.monotonic() < deadline:
            if self.state(name) == "exited" and not live_groups({pgid}):
                return True
            time.sleep(0.005)
        return False

    def kill(self, name: str) -> None:
        # As `docker kill`: returns once the instance is gone. A loaded machine can take seconds to reap
        # a group, so wait generously, and say so rather than return with the group still there.
        self._signal_group(name, signal.SIGKILL)
        if not self._wait_gone(name, KILL_WAIT_S):
            raise StackError(f"local backend: {name} was sent SIGKILL but its process group was still there "
                             f"after {KILL_WAIT_S:g}s")

    def stop(self, name: str) -> None:
        if self._signal_group(name, signal.SIGTERM):
            self._signal_group(name, signal.SIGCONT)  # a paused process must run to see SIGTERM
            if not self._wait_gone(name, float(self._rec(name)["stop_timeout"])):
                self.kill(name)

    def start(self, name: str) -> None:
        state = self.state(name)
        if state in ("running", "paused"):
            return  # as `docker start` on a running container: nothing to do
        self._signal_group(name, signal.SIGKILL)  # leftovers of the old group, if any
        self._spawn(name)

    def remove(self, name: str) -> None:
        """End an instance's process group and forget it, with its kept data (a renewed stack starts it afresh).

        SIGKILL: its data goes with it, so nothing of it must be written out.
        """
        self.remove_all([name])

    def remove_all(self, names: list[str]) -> None:
        names = [n for n in names if n in self.procs]
        groups = {int(self.procs[n]["pid"]) for n in names if "pid" in self.procs[n]}
        for name in names:
            self._signal_group(name, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while live_groups(groups) and time.monotonic() < deadline:
            time.sleep(0.005)
        for name in names:
            self.procs.pop(name, None)
            shutil.rmtree(self.logs.parent / "data" / name, ignore_errors=True)

    def _wait_state(self, name: str, wanted: str, timeout: float = 2.0) -> None:
        """Signals are delivered asynchronously; return once /proc shows their effect."""
        deadline = time.monotonic() + timeout
        while self.state(name) != wanted and time.monotonic() < deadline:
            time.sleep(0.005)

    def pause(self, name: str) -> None:
        if not self._signal_group(name, signal.SIGSTOP):
            raise StackError(f"cannot pause {name}: it is not running")
        # As `docker pause`: returns once every process of the group is stopped. A process stops only
        # when it next runs, which on a loaded machine can be seconds after the keeper did (seen in CI).
        pgid = int(self._rec(name).get("pid", 0))
        deadline = time.monotonic() + PAUSE_WAIT_S
        while self.state(name) != "paused" or running_members(pgid):
            if time.monotonic() > deadline:
                raise StackError(f"local backend: {name} was sent SIGSTOP but {running_members(pgid)} of its "
                                 f"processes still ran after {PAUSE_WAIT_S:g}s")
            time.sleep(0.01)

    def resume(self, name: str) -> None:
        if self._signal_group(name, signal.SIGCONT):
            self._wait_state(name, "running")

    def disconnect(self, name: str) -> None:
        raise Unsupported(
            f"disconnect {name}: local processes share the host network; "
            "use a 'down' link fault on its links, or --backend docker"
        )

    def reconnect(self, name: str) -> None:
        raise Unsupported(f"reconnect {name}: local processes share the host network; use --backend docker")

    def squeeze(self, name: str, cpus: float | None = None, memory_mb: int | None = None) -> None:
        raise Unsupported(f"squeeze {name}: local processes have no cgroup of their own here; use --backend docker")

    def unsqueeze(self, name: str) -> None:
        raise Unsupported(f"unsqueeze {name}: local processes have no cgroup of their own here; use --backend docker")

    def image_ids(self) -> dict[str, str]:
        return {}  # no images: processes run from the working tree

    def _groups(self) -> dict[int, tuple[str, str]]:
        """Every process group of this run: the record's and the births file's (pgid -> (name, start))."""
        groups = {int(rec["pid"]): (name, str(rec.get("start", ""))) for name, rec in self.procs.items() if "pid" in rec}
        try:
            lines = self.births.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                birth = json.loads(line)
                groups.setdefault(int(birth["pid"]), (str(birth["name"]), str(birth["start"])))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a killed server: that child never ran (it waits to be recorded)
        return groups

    def teardown(self) -> None:
        """SIGKILL every group but those that must flush (SIGTERM first), the fork server last; verify they are gone.

        Nothing of a torn-down stack is kept, so no instance needs a graceful
        stop, except one whose kept data must be written out (``volume``):
        it gets SIGTERM and its stop timeout, in parallel with the rest.
        """
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        groups = self._groups()
        flush = {int(rec["pid"]): float(rec.get("stop_timeout", 3)) for name, rec in self.procs.items()
                 if "pid" in rec and rec.get("flush") and name != SERVER}
        for pgid, (name, start) in groups.items():
            if pgid in flush:
                if _signal_pgid(pgid, start, signal.SIGTERM, name):
                    _signal_pgid(pgid, start, signal.SIGCONT, name)
            else:
                _signal_pgid(pgid, start, signal.SIGKILL, name)
        deadline = time.monotonic() + max(flush.values(), default=0.0)
        while (alive := live_groups(set(flush))) and time.monotonic() < deadline:
            time.sleep(0.005)
        # Whatever is left (a slow flusher, a child left in a group): SIGKILL, until /proc shows none of them,
        # so that what teardown reports (``leftovers``) is the truth.
        deadline = time.monotonic() + 5
        while (alive := live_groups(set(groups))) and time.monotonic() < deadline:
            for pgid in alive:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.005)
        if self._server is not None:  # our child: reap it
            try:
                self._server.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        release_ports(registry.state_dir() / self.run_id)  # nothing of ours will bind them again

    def leftovers(self) -> list[str]:
        groups = self._groups()
        alive = live_groups(set(groups))
        return [f"process group {pgid} ({groups[pgid][0]})" for pgid in sorted(alive)]

    def record(self) -> dict[str, Any]:
        return {"procs": self.procs}


def _signal_pgid(pgid: int, start: str, sig: int, name: str) -> bool:
    """Signal a process group we started; False when it is gone (or its pid now names another process)."""
    # A pid that now belongs to another process (different start time) is not ours.
    if start and os.path.exists(f"/proc/{pgid}") and process_start_time(pgid) != start:
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError as err:
        raise StackError(f"cannot signal {name} (pgid {pgid}): {err}") from None


def running_members(pgid: int) -> int:
    """How many processes of the group are neither stopped nor zombies (from /proc)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in ("T", "t", "Z", "X", "x"):
                count += 1
    return count


def live_groups(pgids: set[int]) -> set[int]:
    """Which of these process groups still have a member that is not a zombie (from /proc)."""
    found: set[int] = set()
    if not pgids:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = proc_stat(int(entry.name))
        if len(fields) < 3:  # gone
            continue
        if fields[0] not in ("Z", "X", "x") and int(fields[2]) in pgids:
            found.add(int(fields[2]))
    return found
