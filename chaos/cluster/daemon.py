"""One dockerd per node, inside the node's network namespace, with its own everything.

Started as ``nsenter --net=<netns> unshare --uts -- sh -c 'hostname N; exec dockerd ...'``:
the engine sees only its node's network (not ``ip netns exec``, which
remounts /sys and the engine then fails with "Devices cgroup isn't
mounted"), and a UTS namespace of its own gives each node its own hostname,
so the swarm's nodes are told apart by name. Data root, exec root, pid
file, socket and config file are the node's own; the host's
/etc/docker/daemon.json is never read. ``setsid``: the engine outlives the
``cluster up`` that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chaos.cluster.system import ClusterError, alive, end_process, kill_tree, processes_mentioning
from chaos.labels import process_start_time

if TYPE_CHECKING:
    import docker

RUN_ROOT = Path("/run/rqc")  # exec roots, sockets, pid files (short paths: unix sockets live below)
DATA_ROOT = Path("/var/lib/rqc")  # image layers and swarm state


@dataclass(frozen=True)
class NodePaths:
    cluster: str
    index: int

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.cluster / f"n{self.index}"

    @property
    def data_dir(self) -> Path:
        return DATA_ROOT / self.cluster / f"n{self.index}"

    @property
    def exec_root(self) -> Path:
        return self.run_dir / "exec"

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "docker.pid"

    @property
    def config(self) -> Path:
        return self.run_dir / "daemon.json"

    @property
    def log(self) -> Path:
        return self.data_dir / "dockerd.log"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


def write_config(paths: NodePaths) -> None:
    # Quick shutdown (every container runs with an init, so stop is fast); logs small.
    config = {"shutdown-timeout": 5, "log-level": "warn", "log-opts": {"max-size": "2m", "max-file": "2"}}
    paths.config.write_text(json.dumps(config, indent=1), encoding="utf-8")


def argv(paths: NodePaths, netns: str, hostname: str) -> list[str]:
    dockerd = [
        "dockerd",
        "--config-file", str(paths.config),
        "--data-root", str(paths.data_dir / "docker"),
        "--exec-root", str(paths.exec_root),
        "--pidfile", str(paths.pidfile),
        "-H", paths.url,
    ]
    return ["nsenter", f"--net=/run/netns/{netns}", "unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *dockerd]


def start(paths: NodePaths, netns: str, hostname: str) -> tuple[int, str]:
    """Start the node's engine in its own session; returns (pid, process start time)."""
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    write_config(paths)
    # Without it every swarm task first tries to pull its image, and with no way out of the
    # bridge that try times out after ~20 s (measured: 21-22 s per task, 2-3 s with it).
    env = {**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"}
    env.pop("DOCKER_HOST", None)
    with open(paths.log, "ab") as log:
        child = subprocess.Popen(
            argv(paths, netns, hostname), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env,
        )
    return child.pid, process_start_time(child.pid)


def client(paths: NodePaths, timeout: int = 30) -> "contextlib.closing[docker.DockerClient]":
    """A client of the node's engine, closed when the ``with`` block ends."""
    import docker

    return contextlib.closing(docker.DockerClient(base_url=paths.url, timeout=timeout))


def wait_ready(paths: NodePaths, pid: int, start_time: str, timeout: float) -> None:
    """Until the engine answers on its socket; fails at once if it exits."""
    import docker

    deadline = time.monotonic() + timeout
    while True:
        if paths.socket.exists():
            try:
                with client(paths, timeout=5) as engine:
                    engine.ping()
                return
            except docker.errors.DockerException:
                pass
        if not alive(pid, start_time):
            raise ClusterError(f"dockerd of node {paths.index} exited: {log_tail(paths)}")
        if time.monotonic() > deadline:
            raise ClusterError(f"dockerd of node {paths.index} did not answer within {timeout:g}s: {log_tail(paths)}")
        time.sleep(0.2)


def log_tail(paths: NodePaths, lines: int = 3) -> str:
    try:
        text = paths.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _recorded_pid(entry: dict[str, Any], paths: NodePaths) -> tuple[int, str] | None:
    """The engine's pid: as recorded, else from its pid file (a ``cluster up`` killed before recording it)."""
    if entry.get("pid"):
        return int(entry["pid"]), str(entry.get("start", ""))
    try:
        pid = int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and str(paths.pidfile).encode() in cmdline.read_bytes():
        return pid, process_start_time(pid)
    return None


def remove_containers(paths: NodePaths) -> None:
    """Force-remove the node's containers while its engine answers (so its shutdown is quick)."""
    import docker

    if not paths.socket.exists():
        return
    try:
        with client(paths, timeout=20) as engine:
            for found in engine.api.containers(all=True):
                try:
                    engine.api.remove_container(found["Id"], force=True, v=True)
                except docker.errors.DockerException:
                    continue
    except docker.errors.DockerException:
        return  # not answering: the process sweep below ends what it ran


def stop(entry: dict[str, Any], paths: NodePaths, grace: float = 30.0) -> None:
    """End the node's engine, then every process still naming the node's folders (containerd, shims, their children)."""
    found = _recorded_pid(entry, paths)
    if found is not None:
        pid, started = found
        if started:
            end_process(pid, started, grace)
    for root in (str(paths.run_dir) + "/", str(paths.data_dir) + "/"):
        kill_tree(processes_mentioning(root))
