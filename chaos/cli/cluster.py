"""``roomquake cluster up|status|env|down``: a multi-node swarm on this machine (needs root).

\b
  sudo roomquake cluster up --nodes 3
  roomquake cluster status
  eval "$(roomquake cluster env)"
  sudo roomquake cluster down
"""

from __future__ import annotations

import time

import click

from chaos.cluster.lifecycle import DEFAULT_NAME

NAME_OPTION = click.option("--name", default=DEFAULT_NAME, show_default=True, help="Cluster name (1-6 letters/digits).")


def _say(message: str) -> None:
    click.echo(f"  {message}", err=True)


@click.group(name="cluster")
def command() -> None:
    """A Docker swarm of several nodes on this one machine, for --backend swarm.

    Each node is a dockerd in its own network namespace on a host-only
    bridge; node 1 is the manager. Nothing it makes is reachable from
    outside the machine. Needs root.

    \b
    Examples:
      roomquake cluster up --nodes 3
      roomquake stack up --backend swarm
      roomquake cluster down
    """


@command.command()
@click.option("--nodes", default=3, show_default=True, type=int, help="How many nodes (1-9).")
@NAME_OPTION
@click.option("--no-images", is_flag=True, help="Do not load the stack's images into the nodes (the swarm backend loads missing ones).")
@click.option("--engine-timeout", default=120.0, show_default=True, type=float, help="Seconds each node's engine may take to answer.")
def up(nodes: int, name: str, no_images: bool, engine_timeout: float) -> None:
    """Make the namespaces, bridge, rules and engines, form the swarm, load the images.

    \b
    Example:
      roomquake cluster up --nodes 3
    """
    from chaos.cluster import up as cluster_up

    began = time.monotonic()
    record = cluster_up(nodes, name, progress=_say, engine_timeout=engine_timeout, load_images=not no_images)
    click.echo(f"cluster {record.name} up: {nodes} node(s) on {record.data['subnet']} in {time.monotonic() - began:.1f}s "
               f"(images loaded in {record.data.get('images_seconds', 0):.1f}s)")
    click.echo(f"manager: {record.manager_socket}")
    click.echo("use: roomquake stack up --backend swarm; see: roomquake cluster status; end: roomquake cluster down")


@command.command()
@NAME_OPTION
def status(name: str) -> None:
    """Nodes, their engines and swarm state; what the record holds.

    \b
    Example:
      roomquake cluster status
    """
    from rich.console import Console
    from rich.table import Table

    from chaos.cluster import load, node_statuses, records
    from chaos.cluster.network import rules_tagged

    if name == DEFAULT_NAME and not any(True for _ in records()):
        click.echo("no cluster is recorded (start one with: roomquake cluster up --nodes 3)")
        return
    record = load(name)
    console = Console()
    who = record.owner.get("io.roomquake.owner-pid", "?")
    console.print(f"cluster {record.name}: {record.state} (last owner pid {who}), subnet {record.data.get('subnet', '?')}, "
                  f"bridge {record.data.get('bridge', '?')}, {len(record.made)} recorded resource(s)")
    table = Table()
    for col in ("node", "hostname", "address", "engine", "swarm", "role", "availability", "containers"):
        table.add_column(col)
    for node in node_statuses(record):
        table.add_row(str(node.index), node.hostname, node.address, node.engine, node.swarm, node.role,
                      node.availability, str(node.containers))
    console.print(table)
    console.print(f"manager: {record.manager_socket}; firewall rules: {len(rules_tagged(f'roomquake cluster {record.name}'))}")


@command.command()
@NAME_OPTION
def env(name: str) -> None:
    """Print the DOCKER_HOST line that points docker (and --backend swarm) at the manager.

    \b
    Example:
      eval "$(roomquake cluster env)"
    """
    from chaos.cluster import load

    click.echo(f"export DOCKER_HOST={load(name).manager_socket}")


@command.command()
@NAME_OPTION
@click.option("--force", is_flag=True, help="Also while another process is still bringing it up.")
def down(name: str, force: bool) -> None:
    """Remove every namespace, link, rule, folder and process the cluster's record names.

    \b
    Example:
      roomquake cluster down
    """
    from chaos.cluster import down as cluster_down

    took = cluster_down(name, progress=_say, force=force)
    click.echo(f"cluster {name} down in {took:.1f}s")
