"""The server's command line: ``python -m chaos.proxy`` and ``roomquake proxy serve``
(chaos/cli/proxy.py mounts :data:`serve` under the ``proxy`` verb)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from chaos.errors import UsageError
from chaos.exits import exit_codes


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ROOMQUAKE_PROXY_HOST", help="API address.")
@click.option("--port", default=8474, show_default=True, type=click.IntRange(0, 65535), envvar="ROOMQUAKE_PROXY_PORT",
              help="API port (0: any free port).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), envvar="ROOMQUAKE_PROXY_CONFIG",
              help="Proxies to create at start: Toxiproxy's -config JSON; each proxy may also list \"toxics\".")
@click.option("--seed", type=int, envvar="ROOMQUAKE_PROXY_SEED",
              help="Seed of every random draw (jitter, toxicity, slicer), for replayable runs.")
@click.option("--token-env", metavar="VAR",
              help="Require 'Authorization: Bearer <token>' on every API request, the token being the value "
                   "of environment variable VAR (when set and not empty). Off by default, as in Toxiproxy.")
@click.option("--allow-remote", is_flag=True, envvar="ROOMQUAKE_PROXY_ALLOW_REMOTE",
              help="Allow a non-loopback API address (anyone who reaches it controls the proxy).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="What the server logs to stderr.")
def serve(host: str, port: int, config: Path | None, seed: int | None, token_env: str | None, allow_remote: bool,
          log_level: str) -> None:
    """Serve the Toxiproxy 2.x HTTP API until SIGINT or SIGTERM.

    \b
    Example:
      roomquake proxy serve --port 8474 --seed 7
      toxiproxy-cli create -l 127.0.0.1:6380 -u 127.0.0.1:6379 redis
    """
    from chaos.proxy import addr
    from chaos.proxy.server import ProxyServer, run

    logging.basicConfig(level=log_level.upper(), format="roomquake proxy: %(levelname)s %(message)s")
    token = os.environ.get(token_env, "") if token_env else ""
    if not addr.is_loopback(host):
        if not allow_remote:
            raise UsageError(f"--host {host} is not a loopback address", hint="pass --allow-remote to expose the API")
        click.echo(f"roomquake proxy: warning: the API on {host} accepts commands from the network"
                   + ("" if token else " (no --token-env)"), err=True)

    def ready(server: ProxyServer) -> None:
        guarded = ", token required" if token else ""
        click.echo(f"roomquake proxy: API on {server.url} (seed {server.seed}{guarded})")
        sys.stdout.flush()
        ready_fd = os.environ.get("RQ_READY_FD", "")  # a launcher's readiness pipe (roomquake's fork server)
        if ready_fd.isdigit():
            try:
                os.write(int(ready_fd), b"ready\n")
            except OSError:
                pass

    run(host, port, config=config, seed=seed, token=token or None, ready=ready)


def main(argv: list[str] | None = None) -> None:
    """``python -m chaos.proxy``: the same options as ``roomquake proxy serve``."""
    with exit_codes("roomquake proxy"):
        serve.main(args=argv, prog_name="python -m chaos.proxy", standalone_mode=False)
