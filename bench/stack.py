"""Cold ``stack up`` to healthy and ``stack down``: roomquake (docker and local) vs docker-compose 1.29, same images.

    .venv/bin/python bench/stack.py [--runs 3] [--scale edge=3,supervisor=4] [--only docker,compose,local]

Images are built (or found cached) first and not timed. Each run does, one
after the other (so all three see the same machine):

- roomquake docker: ``roomquake stack up --backend docker`` (a fresh process,
  as a user runs it) until it returns: every container healthy, link proxies
  created; then ``roomquake stack down``. The run record's step times
  (``timings``: images and network ready, containers created, proxy healthy,
  proxies created, all healthy) are read before the down.
- compose: a compose file generated from the same plan (one compose service
  per instance, same image, command, env, secrets, kept-data volume, restart
  policy, loopback-only published ports, init), ``docker-compose up -d``,
  then the link proxies populated and every instance polled healthy exactly
  as roomquake's health checks do (chaos.stack.health), since compose 1.29
  has no ``--wait``; then ``docker-compose down``.
- roomquake local: ``roomquake stack up --backend local``, then ``down``.

And the floor: for each Python instance a bare Python process importing
its service's preload list (``python -c "import ..."``), summed over the
instances and divided by the cores: what starting each instance as its own
interpreter costs at the least (each container of the docker backend, and of
compose, does).

Prints each figure's median, min-max and spread (max - min) over the runs,
the ratio roomquake / compose per run (median), and the load average. Beside
the times, the CPU each bring-up cost (seconds of CPU: the engine, the
containers' processes and shims, the client; locally the fork server and
instances), which a loaded machine distorts much less than wall time.
Everything carries roomquake's run labels and is removed at the end, also on
failure. ``--json FILE`` writes every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from chaos.labels import RunIdentity  # noqa: E402
from chaos.stack.bringup import new_secrets, populate  # noqa: E402
from chaos.stack.health import wait_all  # noqa: E402
from floor import describe, floor  # noqa: E402  (bench/floor.py)
from chaos.stack.plan import docker_addressing, make_plan  # noqa: E402
from chaos.stack.spec import apply_scale, load_stack, parse_scale  # noqa: E402

STACK = ROOT / "docker" / "stack.yaml"
TICK = os.sysconf("SC_CLK_TCK")


# --- CPU accounting: what a bring-up costs the machine, which a loaded machine does not distort as much as time --


def _proc_cpu(pid: int | str, children: bool = True) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15 if children else 13]) / TICK


def _procs() -> list[tuple[int, str, int]]:
    """(pid, comm, pgid) of every process."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    head, rest = f.read().rsplit(")", 1)
                out.append((int(entry), head.split("(", 1)[1], int(rest.split()[2])))
            except (OSError, IndexError, ValueError):
                continue
    return out


def engine_cpu() -> float:
    """dockerd and containerd, with the children they reaped (runc, docker-proxy after they end)."""
    return sum(_proc_cpu(pid) for pid, comm, _ in _procs() if comm in ("dockerd", "containerd"))


def containers_cpu(label: str) -> float:
    """The containers' own processes (cgroup) and their shims, for containers carrying ``label``."""
    import docker

    client = docker.from_env()
    try:
        ids = [c["Id"] for c in client.api.containers(all=True, filters={"label": label})]
    finally:
        client.close()
    total = 0.0
    for cid in ids:
        try:
            total += int(Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            continue
    for pid, comm, _ in _procs():
        if comm.startswith("containerd-shim"):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if any(cid.encode() in cmdline for cid in ids):
                total += _proc_cpu(pid)
    return total


def groups_cpu(pgids: set[int]) -> float:
    return sum(_proc_cpu(pid) for pid, _, pgid in _procs() if pgid in pgids)


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def compose_file(spec, plan, refs: dict[str, str], labels: dict[str, str]) -> dict:
    services, volumes = {}, {}
    for inst in plan.instances:
        svc = spec.services[inst.service]
        entry = {
            "image": refs[svc.image],
            # compose substitutes $VAR from its own environment: $$ keeps a $ for the container's shell
            "command": [part.replace("$", "$$") for part in inst.command],
            "environment": {k: v.replace("$", "$$") for k, v in inst.env.items()},
            "hostname": inst.name,
            "ports": [f"127.0.0.1::{inst.port}"],
            "init": True,
            "labels": {**labels, "io.roomquake.service": inst.service, "io.roomquake.instance": inst.name},
        }
        if svc.restart != "no":
            entry["restart"] = svc.restart
        if svc.volume:
            volumes[f"{inst.name}-data"] = {"labels": labels}
            entry["volumes"] = [f"{inst.name}-data:{svc.volume}"]
        services[inst.name] = entry
    return {"version": "2.4", "services": services, "volumes": volumes, "networks": {"default": {"labels": labels}}}


def compose_run(spec, plan, refs, run_secrets, identity: RunIdentity, workdir: Path) -> dict[str, float]:
    project = f"rqbench{identity.run_id.replace('-', '')}"
    path = workdir / f"{project}.json"  # JSON is YAML: compose reads it
    path.write_text(json.dumps(compose_file(spec, plan, refs, identity.labels())))
    base = ["docker-compose", "-p", project, "-f", str(path)]
    import docker

    client = docker.from_env()
    token = run_secrets["proxy_token"] if spec.proxy.token_env else None
    try:
        cpu = (engine_cpu(), children_cpu(), self_cpu())
        began = time.monotonic()
        up = subprocess.run([*base, "up", "-d", "--no-build"], capture_output=True, text=True)
        if up.returncode:
            raise SystemExit(f"docker-compose up failed: {up.stderr.strip()[-500:]}")
        ports: dict[str, tuple[str, int]] = {}
        for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
            inst = c.labels["io.roomquake.instance"]
            port = plan.instance(inst).port
            bound = (c.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or [{"HostPort": "0"}]
            ports[inst] = ("127.0.0.1", int(bound[0]["HostPort"]))
        proxy = f"{spec.proxy.service}-1"
        wait_all([(proxy, spec.services[spec.proxy.service].health, lambda: ports[proxy])], secrets=run_secrets)
        populate("http://%s:%d" % ports[proxy], plan.proxies, token)
        wait_all([(i.name, spec.services[i.service].health, lambda n=i.name: ports[n]) for i in plan.instances],
                 secrets=run_secrets)
        took_up = time.monotonic() - began
        used = {"compose up cpu: engine": engine_cpu() - cpu[0],
                "compose up cpu: client": children_cpu() - cpu[1] + self_cpu() - cpu[2],
                "compose up cpu: containers": containers_cpu(f"com.docker.compose.project={project}")}
        began = time.monotonic()
        subprocess.run([*base, "down", "-v", "-t", "3"], check=True, capture_output=True)
        return {"compose up": took_up, "compose down": time.monotonic() - began, **used}
    finally:
        subprocess.run([*base, "down", "-v", "-t", "1"], capture_output=True)
        client.close()


def roomquake_run(backend: str, scale: str, env: dict[str, str], state: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "chaos", "stack"]
    cpu = (engine_cpu(), children_cpu())
    began = time.monotonic()
    up = subprocess.run([*cmd, "up", "--backend", backend, "--scale", scale], env=env, capture_output=True, text=True)
    took_up = time.monotonic() - began
    run_id = up.stdout.split("run ", 1)[1].split(",", 1)[0] if up.returncode == 0 else "latest"
    try:
        record = json.loads((state / f"{run_id}.json").read_text())
    except (OSError, ValueError):
        record = {}
    timings = record.get("timings", {})
    used = {f"{backend} up cpu: client": children_cpu() - cpu[1]}
    if backend == "docker":
        used[f"{backend} up cpu: engine"] = engine_cpu() - cpu[0]
        used[f"{backend} up cpu: containers"] = containers_cpu(f"io.roomquake.run={run_id}")
    elif record:
        used[f"{backend} up cpu: instances"] = groups_cpu({int(p["pid"]) for p in record["state"]["procs"].values()
                                                           if "pid" in p})
    began = time.monotonic()
    down = subprocess.run([*cmd, "down", run_id], env=env, capture_output=True, text=True)
    took_down = time.monotonic() - began
    if up.returncode or down.returncode:
        raise SystemExit(f"roomquake {backend} failed: {up.stderr.strip()[-800:]} {down.stderr.strip()[-800:]}")
    out = {f"{backend} up": took_up, f"{backend} down": took_down, **used,
           f"{backend} up cpu": sum(used.values())}
    out.update({f"{backend} step: {name}": float(t) for name, t in timings.items()})
    return out


def summary(name: str, values: list[float]) -> str:
    med = statistics.median(values)
    return (f"  {name:38s} {med:6.2f}  ({min(values):.2f}-{max(values):.2f}, spread {max(values) - min(values):.2f},"
            f" n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", default="edge=3,supervisor=4")
    parser.add_argument("--only", default="docker,compose,local", help="which of docker, compose, local to run")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if "compose" in only and not shutil.which("docker-compose"):
        print("docker-compose is not installed: its figures are left out")
        only.discard("compose")

    stack = load_stack(STACK)
    spec = apply_scale(stack.spec, parse_scale(args.scale))
    run_secrets = new_secrets()
    plan = make_plan(spec, "ci", docker_addressing(f"{spec.proxy.service}-1", spec.proxy.listeners_from),
                     run_secrets["secret"], run_secrets["proxy_token"])
    refs: dict[str, str] = {}
    if only & {"docker", "compose"}:
        from chaos.engine import connect
        from chaos.images import ensure_images

        images = ensure_images(connect())  # cached: not part of any timing
        refs = {name: images.ref(img.build) for name, img in spec.images.items() if img.build}
    samples: dict[str, list[float]] = {}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        env = {**os.environ, "ROOMQUAKE_STATE_DIR": str(state)}
        for _ in range(args.runs):
            results: dict[str, float] = {}
            if "docker" in only:
                results.update(roomquake_run("docker", args.scale, env, state))
            if "compose" in only:
                results.update(compose_run(spec, plan, refs, run_secrets, RunIdentity(), Path(tmp)))
            if "local" in only:
                results.update(roomquake_run("local", args.scale, env, state))
            if "compose up" in results:
                results["compose up cpu"] = sum(v for k, v in results.items() if k.startswith("compose up cpu: "))
            if "docker up" in results and "compose up" in results:
                results["docker up / compose up"] = results["docker up"] / results["compose up"]
                results["docker down / compose down"] = results["docker down"] / results["compose down"]
                results["docker up cpu / compose up cpu"] = results["docker up cpu"] / results["compose up cpu"]
            for key, value in results.items():
                samples.setdefault(key, []).append(value)
            loads.append(os.getloadavg()[0])
    base = floor(STACK, args.runs, parse_scale(args.scale))
    print(f"{len(plan.instances)} instances ({int(base['pythons'])} Python), {len(plan.proxies)} link proxies, "
          f"{args.runs} runs; seconds: median (min-max, spread); load average {min(loads):.1f}-{max(loads):.1f}")
    for key in sorted(samples, key=lambda k: (k.split(" ")[0], "step" in k, k)):
        if "step" not in key:
            print(summary(key, samples[key]))
    for key in samples:
        if "step" in key:
            print(summary(key, samples[key]))
    print("  " + describe(base))
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "floor": base, "load": loads}, indent=1))


if __name__ == "__main__":
    main()
