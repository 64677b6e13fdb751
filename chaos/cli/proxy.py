"""``roomquake proxy serve``: run the Toxiproxy-compatible fault proxy
(the command itself lives with the server, in chaos.proxy.cli)."""

from __future__ import annotations

import click

from chaos.proxy.cli import serve


@click.group("proxy")
def command() -> None:
    """The Toxiproxy-compatible fault proxy.

    \b
    Example:
      roomquake proxy serve --port 8474
    """


command.add_command(serve)
