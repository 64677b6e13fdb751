"""Local backend: every instance a process on loopback, in its own process group.

Each instance is started with ``start_new_session`` so its pid is also its
process-group id: signals go to the whole group (a service that forks is
still stopped completely) and teardown ends exactly what we started, by id.
Faults map to signals: kill=SIGKILL, stop=SIGTERM then SIGKILL, pause=
SIGSTOP, resume=SIGCONT. Processes have no network or cgroup of their own
here, so disconnect and squeeze raise ``Unsupported`` (use a link fault, or
the docker backend).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from chaos.labels import process_start_time
from chaos.stack import registry
from chaos.stack.errors import StackError, Unsupported
from chaos.stack.running import Backend
from chaos.stack.plan import InstancePlan, Plan, free_ports, local_addressing, make_plan, ports_needed
from chaos.stack.spec import Stack, StackSpec


# A crashed instance of a ``restart: on-failure`` service is started again by
# this keeper, the parent in its process group: the same rule as Docker's
# policy. A non-zero exit of the program alone (a crash) restarts it after
# 0.1 s, doubling to 60 s, back to 0.1 s after 10 s of running; a kill or
# stop fault signals the whole group, the keeper included, so nothing
# restarts then (as `docker kill` / `docker stop` never trigger a restart).
# POSIX sh, so the keeper costs no interpreter start-up of its own.
KEEPER = r"""
delay=1
while :; do
  started=$(date +%s)
  "$@"
  code=$?
  [ "$code" -eq 0 ] && exit 0
  [ $(( $(date +%s) - started )) -ge 10 ] && delay=1
  echo "roomquake keeper: exited with code $code, restarting in $((delay / 10)).$((delay % 10))s" >&2
  sleep "$((delay / 10)).$((delay % 10))"
  delay=$((delay * 2)); [ "$delay" -gt 600 ] && delay=600
done
"""
KEEPER_MARK = "roomquake keeper: exited with code"


def _proc_state(pid: int, start: str) -> str:
    """running | paused | exited, from /proc (guards against pid reuse with the start time)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return "exited"
    if fields[19] != start:
        return "exited"
    code = fields[0]
    if code in ("Z", "X", "x"):
        return "exited"
    if code in ("T", "t"):
        return "paused"
    return "running"


class LocalBackend(Backend):
    kind = "local"

    def __init__(self, stack: Stack, run_id: str, procs: dict[str, dict[str, Any]] | None = None) -> None:
        self.stack = stack
        self.run_id = run_id
        self.procs: dict[str, dict[str, Any]] = procs or {}  # name -> pid, start, argv, env, port, stop_timeout
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = registry.state_dir() / run_id / "logs"  # created by prepare()

    # --- planning --------------------------------------------------------------

    def plan(self, spec: StackSpec, profile: str | None, secret: str = "", proxy_token: str = "") -> Plan:
        data_root = str(registry.state_dir() / self.run_id / "data")
        return make_plan(spec, profile, local_addressing(free_ports(ports_needed(spec)), data_root), secret, proxy_token)

    def _argv(self, command: list[str]) -> list[str]:
        head = sys.executable if command[0] in ("python", "python3") else shutil.which(command[0])
        if head is None:
            raise StackError(f"local backend: {command[0]!r} is not on PATH (install it or use --backend docker)")
        return [head, *command[1:]]

    def prepare(self, plan: Plan) -> None:
        """Check every program exists before anything starts."""
        for inst in plan.instances:
            self._argv(inst.command)
        self.logs.mkdir(parents=True, exist_ok=True)

    def _own_env(self, inst: InstancePlan) -> dict[str, str]:
        """What this instance adds to the environment (recorded; the rest is os.environ at spawn)."""
        paths = [str((self.stack.root / p).resolve()) for p in self.stack.spec.local.pythonpath]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        env = {"PYTHONUNBUFFERED": "1", **({"PYTHONPATH": os.pathsep.join(paths)} if paths else {})}
        env.update(inst.env)
        return env

    @staticmethod
    def _full_env(own: dict[str, str]) -> dict[str, str]:
        # The user's environment is inherited but never written to the run record (it may hold secrets).
        env = {k: v for k, v in os.environ.items() if not k.startswith("RQ_")}
        env.update(own)
        return env

    # --- lifecycle -------------------------------------------------------------

    def launch(self, inst: InstancePlan) -> None:
        svc = self.stack.spec.services[inst.service]
        argv = self._argv(inst.command)
        if svc.restart == "on-failure":
            argv = ["/bin/sh", "-c", KEEPER, f"keeper-{inst.name}", *argv]
        if svc.volume:  # kept for the run: under the run's folder, removed with it
            (self.logs.parent / "data" / inst.name).mkdir(parents=True, exist_ok=True)
        self.procs[inst.name] = {
            "argv": argv,
            "env": self._own_env(inst),
            "port": inst.port,
            "stop_timeout": svc.stop_timeout_s,
            "cwd": str(self.stack.root),
        }
        self._spawn(inst.name)

    def _spawn(self, name: str) -> None:
        rec = self.procs[name]
        log = open(self.logs / f"{name}.log", "ab")
        try:
            child = subprocess.Popen(
                rec["argv"],
                env=self._full_env(rec["env"]),
                cwd=rec["cwd"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: pid == pgid
            )
        finally:
            log.close()
        self.children[name] = child
        rec["crashes_before"] = 0
        rec["crashes_before"] = self.crashes(name)  # only crashes of this spawn count
        rec["pid"] = child.pid
        rec["start"] = process_start_time(child.pid)

    def _rec(self, name: str) -> dict[str, Any]:
        try:
            return self.procs[name]
        except KeyError:
            raise StackError(f"local backend: {name!r} was never started") from None

    def state(self, name: str) -> str:
        rec = self.procs.get(name)
        if not rec or "pid" not in rec:
            return "missing"
        child = self.children.get(name)
        if child is not None and child.poll() is not None:
            return "exited"
        return _proc_state(rec["pid"], rec["start"])

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
        child = self.children.get(name)
        code = child.returncode if child is not None else None
        return f"exit code {code}; {self.log_tail(name)}"

    def log_tail(self, name: str, lines: int = 5) -> str:
        try:
            text = (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def address(self, name: str) -> tuple[str, int]:
        return "127.0.0.1", int(self._rec(name)["port"])

    def _signal_group(self, name: str, sig: int) -> bool:
        """Signal the instance's process group; False when nothing of it is left."""
        rec = self._rec(name)
        pid = rec.get("pid")
        if pid is None:
            return False
        # A pid that now belongs to another process (different start time) is not ours.
        if os.path.exists(f"/proc/{pid}") and process_start_time(pid) != rec["start"]:
            return False
        try:
            os.killpg(pid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError as err:
            raise StackError(f"cannot signal {name} (pgid {pid}): {err}") from None

    def _reap(self, name: str) -> None:
        child = self.children.get(name)
        if child is not None:
            child.poll()

    def _wait_gone(self, name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap(name)
            if self.state(name) == "exited":
                return True
            time.sleep(0.02)
        return False

    def kill(self, name: str) -> None:
        self._signal_group(name, signal.SIGKILL)
        self._wait_gone(name, 5)

    def stop(self, name: str) -> None:
        if self._signal_group(name, signal.SIGTERM):
            self._signal_group(name, signal.SIGCONT)  # a paused process must run to see SIGTERM
            if not self._wait_gone(name, float(self._rec(name)["stop_timeout"])):
                self._signal_group(name, signal.SIGKILL)
                self._wait_gone(name, 5)

    def start(self, name: str) -> None:
        state = self.state(name)
        if state in ("running", "paused"):
            return  # as `docker start` on a running container: nothing to do
        self._signal_group(name, signal.SIGKILL)  # leftovers of the old group, if any
        self._spawn(name)

    def remove(self, name: str) -> None:
        """End an instance's process group and forget it, with its kept data (a renewed stack starts it afresh)."""
        if name not in self.procs:
            return
        self.stop(name)
        self._signal_group(name, signal.SIGKILL)  # anything left in its group
        self.procs.pop(name, None)
        self.children.pop(name, None)
        shutil.rmtree(self.logs.parent / "data" / name, ignore_errors=True)

    def _wait_state(self, name: str, wanted: str, timeout: float = 2.0) -> None:
        """Signals are delivered asynchronously; return once /proc shows their effect."""
        deadline = time.monotonic() + timeout
        while self.state(name) != wanted and time.monotonic() < deadline:
            time.sleep(0.005)

    def pause(self, name: str) -> None:
        if not self._signal_group(name, signal.SIGSTOP):
            raise StackError(f"cannot pause {name}: it is not running")
        self._wait_state(name, "paused")

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

    def teardown(self) -> None:
        """SIGTERM every group (SIGCONT so paused ones see it), then SIGKILL what remains."""
        names = [n for n in self.procs if "pid" in self.procs[n]]
        for name in names:
            if self._signal_group(name, signal.SIGTERM):
                self._signal_group(name, signal.SIGCONT)
        deadline = time.monotonic() + 3
        for name in names:
            while self.state(name) != "exited" and time.monotonic() < deadline:
                self._reap(name)
                time.sleep(0.02)
        for name in names:
            self._signal_group(name, signal.SIGKILL)  # also any child left in the group
        for name in names:
            self._wait_gone(name, 2)
        # A SIGKILLed process lingers a moment before it is gone (or a zombie):
        # wait until no member of any group is left, so that what teardown
        # reports (``leftovers``) is the truth.
        groups = {int(self.procs[n]["pid"]) for n in names}
        deadline = time.monotonic() + 5
        while (alive := live_groups(groups)) and time.monotonic() < deadline:
            for pgid in alive:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def leftovers(self) -> list[str]:
        groups = {int(rec["pid"]): name for name, rec in self.procs.items() if "pid" in rec}
        alive = live_groups(set(groups))
        return [f"process group {pgid} ({groups[pgid]})" for pgid in sorted(alive)]

    def record(self) -> dict[str, Any]:
        return {"procs": self.procs}


def live_groups(pgids: set[int]) -> set[int]:
    """Which of these process groups still have a member that is not a zombie (from /proc)."""
    found: set[int] = set()
    if not pgids:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in ("Z", "X", "x") and int(fields[2]) in pgids:
            found.add(int(fields[2]))
    return found

