"""``roomquake stack up|status|down|import``: a stack that outlives the command; a Compose project as a stack file.

\b
  roomquake stack up --backend local --scale edge=3,supervisor=4 --profile ci
  roomquake stack status
  roomquake stack down
  roomquake stack import docker-compose.yml -o stack.yaml
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

DEFAULT_FILE = "docker/stack.yaml"


def _stack_file(ref: str | None) -> Path:
    """--file (or $ROOMQUAKE_STACK): a stack file or a stack's name; default ./docker/stack.yaml, else the shipped stack."""
    from chaos import shipped
    from chaos.stack.find import find_stack

    chosen = ref or os.environ.get("ROOMQUAKE_STACK")
    if chosen:
        return find_stack(chosen, None)
    local = Path(DEFAULT_FILE)
    return local if local.is_file() else shipped.stack_file()


@click.group(name="stack")
def command() -> None:
    """Bring the stack up, show it, take it down.

    \b
    Example:
      roomquake stack up --backend local --profile gameday
      roomquake stack status
      roomquake stack down
    """


@command.command()
@click.option("--file", "-f", "path", metavar="FILE|NAME",
              help=f"Stack file or stack name, e.g. audio-room (default: $ROOMQUAKE_STACK, ./{DEFAULT_FILE}, else audio-room).")
@click.option("--backend", type=click.Choice(["docker", "local", "swarm"]), help="Default: docker if an engine answers, else local.")
@click.option("--scale", help="Replica counts, e.g. edge=3,supervisor=4.")
@click.option("--profile", help="Timing profile from the stack file, e.g. ci or gameday.")
def up(path: str | None, backend: str | None, scale: str | None, profile: str | None) -> None:
    """Start every service, healthy before returning; leave it running.

    \b
    Example:
      roomquake stack up --backend local --scale edge=3,supervisor=4 --profile ci
    """
    from chaos.stack import parse_scale, start_stack
    from chaos.stack.spec import load_stack

    from chaos.signals import INTERRUPTS

    stack = load_stack(_stack_file(path))
    began = time.monotonic()
    # Ctrl-C while it comes up: noted, acted on at the next checkpoint; what was started is removed, exit 3.
    running = start_stack(stack, backend=backend, scale=parse_scale(scale), profile=profile, keep=True,
                          checkpoint=INTERRUPTS.check)
    took = time.monotonic() - began
    click.echo(
        f"stack {stack.name} up: run {running.run_id}, backend {running.backend_kind}, "
        f"profile {running.plan.profile}, {len(running.plan.instances)} instances healthy in {took:.1f}s"
    )
    click.echo(f"proxy API: {running.proxy_url}")
    click.echo("see: roomquake stack status; end: roomquake stack down")


@command.command()
@click.argument("run_id", default="latest")
def status(run_id: str) -> None:
    """Instances, their state and addresses, and the proxy's links.

    \b
    Example:
      roomquake stack status latest
    """
    from rich.console import Console
    from rich.table import Table

    from chaos.stack.bringup import attach_record
    from chaos.stack import registry

    if run_id == "latest" and not registry.records():
        click.echo("no stack is up (start one with: roomquake stack up)")
        return
    stack = attach_record(run_id)
    table = Table(title=f"run {stack.run_id} - {stack.spec.name} ({stack.backend_kind}, profile {stack.plan.profile})")
    for col in ("instance", "service", "state", "address"):
        table.add_column(col)
    for inst in stack.instances():
        port_less = stack.spec.services[inst.service].port is None  # a worker: listens on no port
        host, port = stack.address(inst.name) if inst.state != "missing" and not port_less else ("-", 0)
        table.add_row(inst.name, inst.service, inst.state, f"{host}:{port}" if port else "-")
    console = Console()
    console.print(table)
    console.print(f"proxy API {stack.proxy_url}; {len(stack.links())} link proxies")
    listener = getattr(stack.backend, "listener_address", None)
    if listener is not None:
        for link in stack.links():
            where = listener(link.listen)
            if where:
                console.print(f"  link {link.name}: 127.0.0.1:{where[1]} -> {link.upstream}")
    others = [r["run_id"] for r in registry.records() if r["run_id"] != stack.run_id]
    if others:
        console.print(f"other recorded runs: {', '.join(others)}")


@command.command()
@click.argument("run_id", default="latest")
@click.option("--all", "everything", is_flag=True, help="Every recorded stack.")
def down(run_id: str, everything: bool) -> None:
    """Stop and remove everything the stack started.

    \b
    Example:
      roomquake stack down latest
    """
    from chaos.stack import registry
    from chaos.stack.sweep import down as take_down

    ids = [r["run_id"] for r in registry.records()] if everything else [run_id]
    if not ids or (run_id == "latest" and not registry.records()):
        click.echo("no stack is up")
        return
    for rid in ids:
        began = time.monotonic()
        done = take_down(rid)
        click.echo(f"run {done} down in {time.monotonic() - began:.1f}s")


@command.command(name="import")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--output", "-o", default="stack.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="The stack file to write.")
@click.option("--project-name", "-p", help="The Compose project's name (default: as docker-compose: its folder).")
@click.option("--env-file", type=click.Path(dir_okay=False), help="Variables for ${VAR} (default: .env beside the file).")
@click.option("--force", is_flag=True, help="Overwrite the output file.")
def import_(files: tuple[str, ...], output: str, project_name: str | None, env_file: str | None, force: bool) -> None:
    """Turn a Compose project into a stack file, every connection through the fault proxy.

    FILES: the Compose file and its overrides (default: docker-compose.yml or
    compose.yaml here, and its override file). Reads versions 2.x, 3.x and none
    without docker-compose; images are built offline from their build contexts
    or used as present in the engine, never pulled.

    \b
    Example:
      roomquake stack import docker-compose.yml -o stack.yaml
      roomquake run experiments/web-db-latency.yaml     # stack: ../stack.yaml
    """
    from chaos.compose import find_files, import_compose

    paths = [Path(f) for f in files] or find_files(Path.cwd())
    report = import_compose(paths, Path(output), name=project_name, env_file=Path(env_file) if env_file else None,
                            force=force)
    click.echo(f"wrote {report.output}: stack {report.project}, {len(report.services)} service(s), "
               f"{len(report.links)} link(s) through the fault proxy: {', '.join(report.links) or 'none'}")
    for line in report.unrouted:
        click.echo(f"  not interposed: {line}")
    for line in report.dropped:
        click.echo(f"  not carried over: {line}")
