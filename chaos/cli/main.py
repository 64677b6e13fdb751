"""Entry point of ``roomquake``: a click group whose verbs load lazily.

Each verb is a module in ``chaos.cli`` exposing a click command named
``command``; importing only the verb that runs keeps start-up fast.
User errors (``RoomquakeError``) become one line on stderr and an exit code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import click

from chaos.errors import RoomquakeError

# verb -> module in chaos.cli. A verb whose module does not exist yet is hidden.
VERBS: dict[str, str] = {
    "run": "chaos.cli.run",
    "validate": "chaos.cli.validate",
    "list": "chaos.cli.list_cmd",
    "schema": "chaos.cli.schema",
    "stack": "chaos.cli.stack",
    "proxy": "chaos.cli.proxy",
    "images": "chaos.cli.images",
    "report": "chaos.cli.report",
    "gameday": "chaos.cli.gameday",
    "clean": "chaos.cli.clean",
    "cluster": "chaos.cli.cluster",
    "explore": "chaos.cli.explore",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(v for v, mod in VERBS.items() if importlib.util.find_spec(mod))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = VERBS.get(name)
        if module is None or importlib.util.find_spec(module) is None:
            return None
        return importlib.import_module(module).command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="roomquake")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """roomquake: chaos experiments for live audio-room services.

    \b
    Example:
      roomquake run experiments/edge-loss.yaml
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


def main(argv: list[str] | None = None) -> None:
    verbose = "--verbose" in (argv or sys.argv) or "-v" in (argv or sys.argv)[:2]
    try:
        cli.main(args=argv, prog_name="roomquake", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("roomquake: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except RoomquakeError as err:
        if verbose:
            raise
        click.echo(f"roomquake: error: {err.one_line()}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("roomquake: interrupted", err=True)
        sys.exit(130)
