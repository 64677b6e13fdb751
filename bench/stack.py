"""Cold ``stack up`` to healthy and ``stack down``: roomquake vs docker-compose 1.29, same images.

    .venv/bin/python bench/stack.py [--runs 3] [--scale edge=3,supervisor=4]

Images are built (or found cached) first and not timed. For each run:

- roomquake: ``roomquake stack up --backend docker`` (a fresh process, as a
  user runs it) until it returns: every container healthy, link proxies
  created; then ``roomquake stack down``.
- compose: a compose file generated from the same plan (one compose
  service per instance, same image, command, env, loopback-only ports,
  init), ``docker-compose up -d``, then the link proxies populated and every
  instance polled healthy exactly as roomquake does (chaos.stack.health),
  since compose 1.29 has no ``--wait``; then ``docker-compose down``.

Everything carries roomquake's run labels and is removed at the end, also on
failure. Prints the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chaos.labels import RunIdentity  # noqa: E402
from chaos.stack.bringup import populate  # noqa: E402
from chaos.stack.health import wait_all  # noqa: E402
from chaos.stack.plan import docker_addressing, make_plan  # noqa: E402
from chaos.stack.spec import apply_scale, load_stack, parse_scale  # noqa: E402

STACK = ROOT / "docker" / "stack.yaml"


def compose_file(spec, plan, refs: dict[str, str], labels: dict[str, str]) -> dict:
    services = {}
    for inst in plan.instances:
        services[inst.name] = {
            "image": refs[spec.services[inst.service].image],
            "command": inst.command,
            "environment": inst.env,
            "hostname": inst.name,
            "ports": [f"127.0.0.1::{inst.port}"],
            "init": True,
            "labels": {**labels, "io.roomquake.service": inst.service, "io.roomquake.instance": inst.name},
        }
    return {"version": "2.4", "services": services, "networks": {"default": {"labels": labels}}}


def compose_run(spec, plan, refs, identity: RunIdentity, workdir: Path) -> tuple[float, float]:
    project = f"rqbench{identity.run_id.replace('-', '')}"
    path = workdir / f"{project}.json"  # JSON is YAML: compose reads it
    path.write_text(json.dumps(compose_file(spec, plan, refs, identity.labels())))
    base = ["docker-compose", "-p", project, "-f", str(path)]
    import docker

    client = docker.from_env()
    try:
        began = time.monotonic()
        subprocess.run([*base, "up", "-d", "--no-build"], check=True, capture_output=True)
        ports: dict[str, tuple[str, int]] = {}
        for c in client.containers.list(filters={"label": f"com.docker.compose.project={project}"}):
            inst = c.labels["io.roomquake.instance"]
            port = plan.instance(inst).port
            ports[inst] = ("127.0.0.1", int(c.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]["HostPort"]))
        proxy = f"{spec.proxy.service}-1"
        wait_all([(proxy, spec.services[spec.proxy.service].health, lambda: ports[proxy])])
        populate("http://%s:%d" % ports[proxy], plan.proxies)
        wait_all([(i.name, spec.services[i.service].health, lambda n=i.name: ports[n]) for i in plan.instances])
        up = time.monotonic() - began
        began = time.monotonic()
        subprocess.run([*base, "down", "-v", "-t", "3"], check=True, capture_output=True)
        return up, time.monotonic() - began
    finally:
        subprocess.run([*base, "down", "-v", "-t", "1"], capture_output=True)
        client.close()


def roomquake_run(scale: str, env: dict[str, str]) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "chaos", "stack"]
    began = time.monotonic()
    up = subprocess.run([*cmd, "up", "--backend", "docker", "--scale", scale], env=env, capture_output=True, text=True)
    took_up = time.monotonic() - began
    run_id = up.stdout.split("run ", 1)[1].split(",", 1)[0] if up.returncode == 0 else "latest"
    began = time.monotonic()
    down = subprocess.run([*cmd, "down", run_id], env=env, capture_output=True, text=True)
    took_down = time.monotonic() - began
    if up.returncode or down.returncode:
        raise SystemExit(f"roomquake failed: {up.stderr.strip()} {down.stderr.strip()}")
    return took_up, took_down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", default="edge=3,supervisor=4")
    args = parser.parse_args()

    from chaos.engine import connect
    from chaos.images import ensure_images

    images = ensure_images(connect())  # cached: not part of any timing
    stack = load_stack(STACK)
    spec = apply_scale(stack.spec, parse_scale(args.scale))
    plan = make_plan(spec, "ci", docker_addressing(f"{spec.proxy.service}-1", spec.proxy.listeners_from))
    refs = {name: images.ref(img.build) for name, img in spec.images.items() if img.build}
    results: dict[str, list[float]] = {"roomquake up": [], "roomquake down": [], "compose up": [], "compose down": []}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ROOMQUAKE_STATE_DIR": tmp}
        for _ in range(args.runs):
            up, down = roomquake_run(args.scale, env)
            results["roomquake up"].append(up)
            results["roomquake down"].append(down)
            up, down = compose_run(spec, plan, refs, RunIdentity(), Path(tmp))
            results["compose up"].append(up)
            results["compose down"].append(down)
    print(f"{len(plan.instances)} instances, {len(plan.proxies)} link proxies, {args.runs} runs, median (min-max) seconds")
    for name, values in results.items():
        print(f"  {name:15s} {statistics.median(values):6.2f}  ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
