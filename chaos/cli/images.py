"""`roomquake images build|list`: the stack's images, built offline."""

from __future__ import annotations

import dataclasses
import time

import click

from chaos.engine import connect
from chaos.images import config_from_env, ensure_images, list_images


@click.group("images")
def command() -> None:
    """Build and list the stack's images (no registry needed).

    \b
    Examples:
      roomquake images build      # build what changed, or say it is up to date
      roomquake images list
      roomquake images prune      # drop tags of older inputs
    """


def _say(message: str) -> None:
    click.echo(f"  {message}", err=True)


@command.command("build")
@click.option("--base-image", metavar="NAME", help="A Python image to build on (default: $ROOMQUAKE_BASE_IMAGE, else a Debian base).")
@click.option("--pull", is_flag=True, help="Pull --base-image if it is not present locally (needs a registry).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result lines.")
def build(base_image: str | None, pull: bool, quiet: bool) -> None:
    """Build the base, services and proxy images unless they are up to date.

    \b
    Example:
      roomquake images build
    """
    config = config_from_env()
    if base_image:
        config = dataclasses.replace(config, base_image=base_image)
    if pull:
        config = dataclasses.replace(config, pull=True)
    started = time.monotonic()
    images = ensure_images(connect(), config, progress=(lambda _: None) if quiet else _say)
    width = max(len(image.ref) for image in images.all)
    for image in images.all:
        state = f"built in {image.seconds:.1f} s" if image.built else "up to date"
        click.echo(f"{image.kind:<9} {image.ref:<{width}}  {state}  ({image.source})")
    verdict = "built" if images.built else "nothing to build"
    click.echo(f"{verdict}: {time.monotonic() - started:.1f} s")


@command.command("list")
def list_() -> None:
    """List the images roomquake built (labelled io.roomquake.image); * marks the current ones.

    \b
    Example:
      roomquake images list
    """
    from chaos.images.prune import current_refs

    client = connect()
    found = list_images(client)
    if not found:
        click.echo("no roomquake images (build them with: roomquake images build)")
        return
    current = current_refs(client, config_from_env())
    width = max(len(info.ref) for info in found)
    click.echo(f"  {'IMAGE':<{width}}  {'KIND':<9} {'ID':<12} {'SIZE':>8}  CREATED")
    for info in found:
        mark = "*" if info.ref in current else " "
        click.echo(f"{mark} {info.ref:<{width}}  {info.kind:<9} {info.id:<12} {info.size_mb:>6.0f}MB  {info.created}")


@command.command("prune")
@click.option("--grace", default=60.0, show_default=True, help="Keep images younger than this many minutes.")
@click.option("--dry-run", "-n", is_flag=True, help="Only show what would be removed.")
def prune(grace: float, dry_run: bool) -> None:
    """Remove roomquake image tags that no longer match the checkout.

    Keeps the current base, services and proxy images, images any container uses,
    and images younger than --grace minutes (another process may be about to
    run them).

    \b
    Example:
      roomquake images prune --dry-run
    """
    from chaos.images.prune import prune_images

    result = prune_images(connect(), config_from_env(), grace_s=grace * 60, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for ref in result.removed:
        click.echo(f"{verb} {ref}")
    click.echo(
        f"{verb} {len(result.removed)}; kept {len(result.kept_current)} current, "
        f"{len(result.kept_in_use)} in use, {len(result.kept_recent)} recent"
    )
