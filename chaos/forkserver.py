"""A preloading fork server: import a stack's modules once, then fork every instance from that warm interpreter.

    python -m chaos.forkserver --address NAME --births FILE [--preload mod,mod...] [--run RUN]
    python -m chaos.forkserver --one [--preload mod,mod...] [--empty DIR] -- COMMAND...   (in a container)

Starting a Python service costs its interpreter and its imports (aiohttp,
websockets, redis, ...: about 0.3-0.5 s of CPU each); a stack of a dozen of
them spends seconds of CPU on the same imports. This server imports the
modules the stack file lists (``services.<name>.preload``) once and then
forks each instance, as gunicorn's ``--preload`` does. It knows nothing of
the services: it imports module names it is given and runs commands.

What an instance gets is what a process started by ``exec`` would get:

- its own session and process group (pid == pgid), stdin from /dev/null,
  stdout and stderr appended to its log, its own environment (also shown in
  ``/proc/PID/environ``, which tools and tests read), its working folder,
  default signal dispositions; ``ps -o comm`` shows its instance name;
- ``python -m MODULE ARGS`` runs the module as ``__main__`` in the forked
  process (its libraries already imported); any other command is exec'd;
- ``RQ_READY_FD``: a pipe the instance may write ``ready`` to once it serves;
  the server passes that on as an event (readiness without polling);
- with ``keeper``, a keeper process leads the group and forks the instance
  again when it crashes (``restart: on-failure``, see :func:`_keeper`).

The server answers while it imports: it takes the preload modules one at a
time and, between two, forks every instance whose own modules (``needs``)
are in already, so the proxy (whose modules come first) starts while the
services' libraries still load.

Nothing runs before it is recorded: the server writes each child's pid and
start time to the run's births file (``--births``), and only then lets the
child go on (it waits on a pipe; if the server dies first, the child exits).
The server itself forks nothing before its owner has recorded it: it waits
for ``go`` on stdin (EOF: it exits). Then it serves until killed.

Protocol (one JSON object per line, on an abstract Unix socket that only
this user can use, checked with SO_PEERCRED):
``{"op": "spawn", "id": 1, "name": "edge-1", "argv": [...], "env": {...},
"cwd": "...", "log": "...", "keeper": false}`` -> ``{"id": 1, "pid": 123,
"start": "4567"}``; ``{"op": "ping", "id": 2}`` -> ``{"id": 2, "pid": ...}``;
events to every client: ``{"event": "ready" | "exit", "name": ..., "pid": ...,
"code": ...}``.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

KEEPER_MARK = "roomquake keeper: exited with code"
READY_ENV = "RQ_READY_FD"
ROOM_ENV = "ROOMQUAKE_ENV_ROOM"  # padding in the server's environment: room for a child's own (see _show_environ)
PYTHONS = ("python", "python3")


# --- in the child ------------------------------------------------------------------


def _proc_stat(pid: int | str = "self") -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def start_time(pid: int) -> str:
    """Start time of ``pid`` in clock ticks since boot ('' when gone): with the pid, a process's identity."""
    try:
        return _proc_stat(pid)[19].decode()
    except (OSError, IndexError):
        return ""


def _show_environ(env: Mapping[str, str]) -> bool:
    """Write ``env`` where the kernel shows /proc/self/environ, as an exec'd process's would read.

    A forked process keeps its parent's environment block; os.environ is
    only a copy. libc's pointers are moved off that block first (os.environ
    is cleared and set again: setenv copies), then the block is overwritten
    in place, NUL-padded. The server is started with ROOMQUAKE_ENV_ROOM as
    padding so that the block has room; an environment that does not fit is
    not shown (False).
    """
    try:
        fields = _proc_stat()
        begin, end = int(fields[47]), int(fields[48])  # env_start, env_end (proc(5) fields 50-51)
    except (OSError, IndexError, ValueError):
        return False
    data = b"".join(os.fsencode(k) + b"=" + os.fsencode(v) + b"\0" for k, v in env.items())
    if not begin or len(data) > end - begin:
        return False
    ctypes.memmove(begin, data + bytes(end - begin - len(data)), end - begin)
    return True


def _show_argv(argv: list[str]) -> bool:
    """Write ``argv`` where the kernel shows /proc/self/cmdline (the server's own, NUL-padded), if it fits."""
    try:
        fields = _proc_stat()
        begin, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (proc(5) fields 48-49)
    except (OSError, IndexError, ValueError):
        return False
    data = b"".join(os.fsencode(a) + b"\0" for a in argv)
    if not begin or len(data) > end - begin:
        return False
    ctypes.memmove(begin, data + bytes(end - begin - len(data)), end - begin)
    return True


def _set_comm(name: str) -> None:
    """``ps -o comm`` and top show the instance's name (15 bytes at most)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _default_signals() -> None:
    """Dispositions as a fresh Python process has them (the server's own handlers must not leak)."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _close_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _redirect(log: str) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def _python_streams() -> None:
    """sys.std* over the new fds, unbuffered as with PYTHONUNBUFFERED (the server's objects wrote elsewhere)."""
    import io

    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True, line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True, line_buffering=True,
                                  errors="backslashreplace")
    # typeshed marks the sys.__std*__ names Final; a forked instance must still rebind them to its own fds
    for name, stream in (("__stdin__", sys.stdin), ("__stdout__", sys.stdout), ("__stderr__", sys.stderr)):
        setattr(sys, name, stream)


def _runs_in_process(argv: list[str]) -> bool:
    """``python -m MODULE ...``: run in the forked interpreter; anything else is exec'd."""
    head = os.path.basename(argv[0])
    return (head in PYTHONS or argv[0] == sys.executable) and len(argv) >= 3 and argv[1] == "-m"


def _exec(argv: list[str], env: Mapping[str, str]) -> None:
    """exec ``argv`` (PATH from ``env``), as subprocess does: SIGPIPE and friends back to their defaults."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvpe(argv[0], argv, dict(env))
    except OSError as err:
        os.write(2, f"roomquake fork server: cannot run {argv[0]}: {err}\n".encode())
        os._exit(127)


def _finish(code: int) -> None:
    """End a forked Python instance as the interpreter would: threads joined, atexit run, streams flushed."""
    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - ending anyway
        pass
    try:
        import atexit

        atexit._run_exitfuncs()
    except Exception:  # noqa: BLE001
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def _run_module(argv: list[str]) -> None:
    """``python -m argv[2] argv[3:]`` in this (forked) interpreter; never returns."""
    import runpy
    import traceback

    module = argv[2]
    sys.argv = [module, *argv[3:]]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        if done.code is None:
            code = 0
        elif isinstance(done.code, int):
            code = done.code
        else:
            print(done.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)  # as CPython: die of the signal
        code = 130
    except BaseException:  # noqa: BLE001 - reported as the interpreter would
        traceback.print_exc()
        code = 1
    _finish(code)


def _run(argv: list[str], env: Mapping[str, str]) -> None:
    if _runs_in_process(argv):
        _run_module(argv)
    _exec(argv, env)


def _exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _keeper(name: str, argv: list[str], env: Mapping[str, str]) -> None:
    """Lead the instance's process group and fork the instance again when it crashes; never returns.

    The rule of Docker's ``on-failure`` policy: a non-zero exit of the
    instance alone (a crash) restarts it after 0.1 s, doubling to 60 s, back
    to 0.1 s after 10 s of running; exit 0 ends the keeper. A kill fault
    (SIGKILL to the group) ends the keeper too; a stop fault (SIGTERM to the
    group) lets the instance finish and then ends the keeper, restarting
    nothing. So neither is ever undone by the keeper.
    """
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    delay = 0.1
    while True:
        began = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _default_signals()
            _set_comm(name)
            _run(argv, env)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except ChildProcessError:
                status = 0
                break
        code = _exit_code(status)
        if code == 0 or stopping:
            os._exit(code)
        if time.monotonic() - began >= 10:
            delay = 0.1
        os.write(2, f"{KEEPER_MARK} {code}, restarting in {delay:.1f}s\n".encode())
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        if stopping:
            os._exit(code)
        delay = min(delay * 2, 60.0)


def _child(request: dict[str, Any], hold: int, ready: int | None, grouped: int) -> None:
    """The forked child: its own group, said to the server (``grouped``); wait to be recorded, become the
    instance (or its keeper); never returns."""
    try:
        os.setsid()
        os.write(grouped, b"g")
        os.close(grouped)
        _default_signals()
        if not os.read(hold, 1):  # the server died before recording us: we never ran
            os._exit(70)
        os.close(hold)
        _redirect(request["log"])
        env = dict(request["env"])
        keep = set()
        if ready is not None:
            env[READY_ENV] = str(ready)
            os.set_inheritable(ready, True)  # also for an exec'd instance
            keep.add(ready)
        _close_fds(keep)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        _show_environ(env)
        _show_argv(request["argv"])  # ps shows what the instance runs, not the server's command line
        _set_comm(request["name"])
        if _runs_in_process(request["argv"]):
            _python_streams()
            _paths(env, request["cwd"])
        if request.get("keeper"):
            _keeper(request["name"], request["argv"], env)
        _run(request["argv"], env)
    except BaseException as err:  # noqa: BLE001 - a child must never return into the server's loop
        try:
            os.write(2, f"roomquake fork server: {request.get('name')}: {type(err).__name__}: {err}\n".encode())
        finally:
            os._exit(71)


def _paths(env: Mapping[str, str], cwd: str) -> None:
    """sys.path as ``python -m`` would set it for this environment: the folder first, then PYTHONPATH."""
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    rest = [p for p in sys.path[1:] if p not in extra]
    sys.path[:] = [cwd, *extra, *rest]


# --- the server --------------------------------------------------------------------


class _Server:
    def __init__(self, address: str, births: str) -> None:
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind("\0" + address)
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.births = os.open(births, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.clients: dict[socket.socket, bytearray] = {}
        self.children: dict[int, str] = {}  # pid -> instance name
        self.ready_pipes: dict[int, tuple[str, int]] = {}  # read fd -> (name, pid)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.to_import: list[str] = []  # preload modules not imported yet, in order
        self.failed: dict[str, str] = {}  # module -> why it could not be preloaded
        self.waiting: list[tuple[socket.socket, dict[str, Any]]] = []  # spawns whose modules are still importing

    def start(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the loop through the wakeup fd
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "reap")

    def loop(self, preload: list[str]) -> None:
        """Serve; import the preload modules one by one meanwhile.

        Between two imports the server answers what it can: a spawn whose
        modules are imported already (the proxy's come first) is forked at
        once, so the proxy starts while the services' libraries still load.
        """
        import gc

        self.to_import = list(preload)
        while True:
            for key, _ in self.selector.select(0 if self.to_import else None):
                kind = key.data
                if kind == "accept":
                    self._accept()
                elif kind == "reap":
                    self._reap()
                elif kind == "client":
                    self._read_client(key.fileobj)  # type: ignore[arg-type]
                else:
                    self._read_ready(key.fd)
            if self.to_import:
                module = self.to_import.pop(0)
                problem = _import(module)
                if problem:
                    self.failed[module] = problem
                gc.freeze()  # what is loaded stays shared with the children (no copy-on-write by the collector)
                waiting, self.waiting = self.waiting, []
                for conn, request in waiting:
                    self._answer(conn, request)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():  # another user's process: never
            conn.close()
            return
        conn.setblocking(True)
        self.clients[conn] = bytearray()
        self.selector.register(conn, selectors.EVENT_READ, "client")

    def _drop(self, conn: socket.socket) -> None:
        self.selector.unregister(conn)
        self.clients.pop(conn, None)
        conn.close()

    def _read_client(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf = self.clients[conn]
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            try:
                request = json.loads(line)
            except ValueError as err:
                self._send(conn, {"id": None, "error": f"not JSON: {err}"})
                continue
            self._answer(conn, request)

    def _answer(self, conn: socket.socket, request: Any) -> None:
        """Reply to a request now, or later when it is a spawn whose modules are still being imported."""
        try:
            if request.get("op") == "spawn":
                needs = [str(m) for m in request.get("needs") or []]
                failed = [self.failed[m] for m in needs if m in self.failed]
                if failed:
                    raise ImportError(failed[0])
                if set(needs) & set(self.to_import):
                    self.waiting.append((conn, request))
                    return
            reply = self._handle(request)
        except Exception as err:  # noqa: BLE001 - answered, the server goes on
            reply = {"id": request.get("id") if isinstance(request, dict) else None,
                     "error": str(err) if isinstance(err, ImportError) else f"{type(err).__name__}: {err}"}
        if conn in self.clients:
            self._send(conn, reply)

    def _send(self, conn: socket.socket, message: dict[str, Any]) -> None:
        try:
            conn.sendall(json.dumps(message).encode() + b"\n")
        except OSError:
            if conn in self.clients:
                self._drop(conn)

    def _broadcast(self, message: dict[str, Any]) -> None:
        for conn in list(self.clients):
            self._send(conn, message)

    def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "ping":
            return {"id": request.get("id"), "pid": os.getpid()}
        if op == "spawn":
            pid, start = self._spawn(request)
            return {"id": request.get("id"), "pid": pid, "start": start}
        raise ValueError(f"unknown op {op!r}")

    def _spawn(self, request: dict[str, Any]) -> tuple[int, str]:
        name = str(request["name"])
        hold_r, hold_w = os.pipe()
        ready_r, ready_w = os.pipe()
        grouped_r, grouped_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(hold_w)
            os.close(ready_r)
            os.close(grouped_r)
            _child(request, hold_r, ready_w, grouped_w)
        os.close(hold_r)
        os.close(ready_w)
        os.close(grouped_w)
        # The reply names a process group: it must exist before the client can signal it (a kill sent
        # right after a start on a loaded machine otherwise found no group, and the child lived on).
        os.read(grouped_r, 1)  # b"" if the child died first: nothing to wait for
        os.close(grouped_r)
        start = start_time(pid)
        line = json.dumps({"name": name, "pid": pid, "start": start}) + "\n"
        os.write(self.births, line.encode())  # recorded before it runs (O_APPEND: one write, one line)
        os.write(hold_w, b"g")
        os.close(hold_w)
        self.children[pid] = name
        os.set_blocking(ready_r, False)
        self.ready_pipes[ready_r] = (name, pid)
        self.selector.register(ready_r, selectors.EVENT_READ, "ready")
        return pid, start

    def _read_ready(self, fd: int) -> None:
        name, pid = self.ready_pipes[fd]
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if b"ready" in data:
                self._broadcast({"event": "ready", "name": name, "pid": pid})
            return
        self.selector.unregister(fd)
        del self.ready_pipes[fd]
        os.close(fd)

    def _reap(self) -> None:
        try:
            while os.read(self.wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            name = self.children.pop(pid, None)
            if name is not None:
                self._broadcast({"event": "exit", "name": name, "pid": pid, "code": _exit_code(status)})


def _import(module: str) -> str | None:
    """Import ``module``; why it failed as one line (None: imported, and no thread was started)."""
    try:
        importlib.import_module(module)
    except BaseException as err:  # noqa: BLE001 - reported to the owner, which names the stack file field
        return f"cannot import {module!r} ({type(err).__name__}: {err})"
    if threading.active_count() > 1:
        return f"importing {module!r} started a thread; a process with threads cannot be forked safely"
    return None


RESPAWNED = "roomquake fork server: respawned"  # + " <instance> (generation N), pid P": the owner looks for it


def _empty(folder: str) -> None:
    """Remove what ``folder`` holds (not the folder: it may be a mount point)."""
    import shutil

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def _fork_one(name: str, argv: list[str]) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            _default_signals()
            _show_argv(argv)
            _set_comm(name)
            _run(argv, os.environ)
        except BaseException as err:  # noqa: BLE001 - never back into the server's loop
            os.write(2, f"roomquake fork server: {name}: {type(err).__name__}: {err}\n".encode())
            os._exit(71)
    return pid


def serve_one(argv: list[str], preload: list[str], empty: str | None) -> None:
    """Run one instance (a container's); never returns.

    The container's main process: the instance runs as its child, in its own
    process group, and the server leaves with the instance's exit code, so the
    engine sees the instance's crashes and its restart policy applies.
    SIGTERM, SIGINT and SIGHUP are passed on to the instance (a stop); SIGUSR1
    replaces the instance by a fresh one forked from the preloaded server (its
    kept data, ``empty``, emptied first), which is how a reused stack is reset
    without a new container, and logs ``RESPAWNED <instance> (generation N)``.
    """
    name = os.environ.get("RQ_INSTANCE", "instance")
    for module in preload:
        problem = _import(module)
        if problem:
            os.write(2, f"roomquake fork server: preload: {problem}\n".encode())
            sys.exit(1)
    import gc

    gc.collect()
    gc.freeze()
    waited = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)  # taken with sigwait, one at a time (the child unblocks)
    generation = 0
    pid = _fork_one(name, argv)
    stopping = False
    while True:
        sig = signal.sigwait(waited)
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            stopping = True
            for each in (sig, signal.SIGCONT):
                try:
                    os.killpg(pid, each)
                except OSError:
                    pass
        elif sig == signal.SIGUSR1 and not stopping:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            if empty:
                _empty(empty)
            generation += 1
            pid = _fork_one(name, argv)
            os.write(2, f"{RESPAWNED} {name} (generation {generation}), pid {pid}\n".encode())
        while True:  # SIGCHLD (or any wake-up): reap; the instance's end is the server's
            try:
                done, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if done == 0:
                break
            if done == pid:
                sys.stdout.flush()
                os._exit(_exit_code(status))


def main(argv: list[str] | None = None) -> None:
    import argparse

    args_in = list(sys.argv[1:] if argv is None else argv)
    if "--one" in args_in:
        split = args_in.index("--") if "--" in args_in else len(args_in)
        one = argparse.ArgumentParser(prog="python -m chaos.forkserver --one")
        one.add_argument("--one", action="store_true")
        one.add_argument("--preload", default="")
        one.add_argument("--empty", default="", help="folder emptied before a fresh instance is forked (SIGUSR1)")
        opts = one.parse_args(args_in[:split])
        command = args_in[split + 1:]
        if not command:
            one.error("give the instance's command after --")
        serve_one(command, [m for m in opts.preload.split(",") if m], opts.empty or None)
    parser = argparse.ArgumentParser(prog="python -m chaos.forkserver", description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="abstract Unix socket name")
    parser.add_argument("--births", required=True, help="file each child's pid is appended to before it runs")
    parser.add_argument("--preload", default="", help="modules to import once, comma-separated")
    parser.add_argument("--run", default="", help="the run id (shown by ps)")
    args = parser.parse_args(args_in)
    os.environ.pop(ROOM_ENV, None)
    try:
        server = _Server(args.address, args.births)
    except OSError as err:
        print(f"error cannot listen on @{args.address}: {err}", flush=True)
        sys.exit(1)
    # Fork nothing before the owner has recorded this process: it says "go" once it has.
    if sys.stdin.readline().strip() != "go":
        sys.exit(0)
    server.start()
    print("ok", flush=True)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    server.loop([m for m in args.preload.split(",") if m])


# --- the owner's side ----------------------------------------------------------------


class ForkServerError(RuntimeError):
    pass


class ForkClient:
    """A connection to a fork server: requests with replies, and the events it broadcasts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._dropped = 0  # events before the first kept one
        self._next = 0
        self._send_lock = threading.Lock()
        self.closed = False
        self._reader = threading.Thread(target=self._read, name="forkserver-client", daemon=True)
        self._reader.start()

    @classmethod
    def connect(cls, address: str, pid: int | None = None, timeout: float = 5.0) -> ForkClient:
        """Connect to ``address``; with ``pid``, only if that process is the one listening there."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect("\0" + address)
            if pid is not None:
                creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
                peer, uid, _ = struct.unpack("3i", creds)
                if peer != pid or uid != os.getuid():
                    raise ForkServerError(f"@{address} is served by pid {peer}, not by the recorded fork server {pid}")
        except OSError as err:
            sock.close()
            raise ForkServerError(f"cannot reach the fork server @{address}: {err}") from None
        sock.settimeout(None)
        return cls(sock)

    def _read(self) -> None:
        buf = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    message = json.loads(line)
                    with self._cond:
                        if "event" in message:
                            self._events.append(message)
                            if len(self._events) > 4096:  # bounded: old events are of no use to anyone
                                self._dropped += 2048
                                del self._events[:2048]
                        else:
                            self._replies[int(message.get("id") or 0)] = message
                        self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def request(self, op: str, timeout: float = 30.0, checkpoint: Callable[[], None] = lambda: None,
                **fields: Any) -> dict[str, Any]:
        """Send a request and wait for its reply, calling ``checkpoint`` meanwhile (it may raise to stop waiting)."""
        return self.requests([{"op": op, **fields}], timeout, checkpoint)[0]

    def requests(self, batch: list[dict[str, Any]], timeout: float = 30.0,
                 checkpoint: Callable[[], None] = lambda: None) -> list[dict[str, Any]]:
        """Send several requests at once (the server answers them back to back) and wait for every reply."""
        with self._send_lock:
            idents = []
            lines = []
            for fields in batch:
                self._next += 1
                idents.append(self._next)
                lines.append(json.dumps({**fields, "id": self._next}).encode() + b"\n")
            try:
                self.sock.sendall(b"".join(lines))
            except OSError as err:
                raise ForkServerError(f"fork server connection lost: {err}") from None
        deadline = time.monotonic() + timeout
        replies = []
        with self._cond:
            for ident in idents:
                while ident not in self._replies:
                    left = deadline - time.monotonic()
                    if self.closed or left <= 0:
                        raise ForkServerError("the fork server did not answer"
                                              + (" (connection closed)" if self.closed else ""))
                    self._cond.wait(min(left, 0.1))
                    if ident not in self._replies:
                        self._cond.release()
                        try:
                            checkpoint()
                        finally:
                            self._cond.acquire()
                replies.append(self._replies.pop(ident))
        return replies

    def spawn(self, name: str, argv: list[str], env: Mapping[str, str], cwd: str, log: str,
              keeper: bool = False, needs: list[str] | None = None, timeout: float = 120.0,
              checkpoint: Callable[[], None] = lambda: None) -> tuple[int, str]:
        """Fork an instance once the server has imported ``needs``; its pid and start time."""
        reply = self.request("spawn", timeout=timeout, checkpoint=checkpoint, name=name, argv=argv, env=dict(env),
                             cwd=cwd, log=log, keeper=keeper, needs=list(needs or []))
        if "error" in reply:
            raise ForkServerError(f"fork server: {reply['error']}")
        return int(reply["pid"]), str(reply["start"])

    @property
    def mark(self) -> int:
        """Position in the event stream: ``events_after(mark)`` returns what came later."""
        with self._cond:
            return self._dropped + len(self._events)

    def events_after(self, mark: int, timeout: float = 0.0) -> tuple[list[dict[str, Any]], int]:
        """Events after ``mark`` (waiting up to ``timeout`` for one), and the new mark."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._dropped + len(self._events) <= mark and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            start = max(0, mark - self._dropped)
            return list(self._events[start:]), self._dropped + len(self._events)

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def environ_room(envs: Sequence[Mapping[str, str]], margin: int = 8192) -> str:
    """Padding for the server's environment so that each of ``envs`` fits its block (see _show_environ)."""
    size = max((sum(len(k) + len(v) + 2 for k, v in env.items()) for env in envs), default=0)
    return "_" * (size + margin)


def wait_line(stream: Any, timeout: float, checkpoint: Callable[[], None]) -> str:
    """One line from a pipe, waiting at most ``timeout`` and calling ``checkpoint`` meanwhile ('' on EOF)."""
    import select

    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        checkpoint()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        readable, _, _ = select.select([fd], [], [], min(0.1, left))
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace")


if __name__ == "__main__":
    main()
