"""Entry point of ``roomquake``: a click group whose verbs load lazily.

Each verb is a module in ``chaos.cli`` exposing a click command named
``command``; importing only the verb that runs keeps start-up fast.
User errors (``RoomquakeError``) become one line on stderr and an exit code.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
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
    "history": "chaos.cli.history",
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


# Verbs that act on Ctrl-C and SIGTERM at their checkpoints (chaos.signals): for
# them a signal means exit 3 (aborted) from the process's first instant on.
SIGNAL_AWARE = ("run", "gameday", "stack")


def _verb(args: list[str]) -> str | None:
    return next((a for a in args if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> None:
    from chaos import _is_the_command_line
    from chaos.signals import INTERRUPTS

    if not _is_the_command_line():  # called in-process (tests): Python's own Ctrl-C stays
        _main(argv)
        return
    INTERRUPTS.install()  # done already by chaos/__init__.py, before anything loaded
    code: int | str | None = 0
    try:
        _main(argv)
    except SystemExit as done:
        code = done.code
    finally:
        # From here on a signal is held back: the exit code below decides.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    held = signal.sigpending() & {signal.SIGINT, signal.SIGTERM}  # came after the block: held back, not lost
    if INTERRUPTS.installed and (INTERRUPTS.received or held) and code not in (2, 3):
        code = 3  # a signal came, even one after the last checkpoint: aborted
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    # Everything is written and closed; leave now. Python's own shutdown would
    # take a while (joining threads) and puts the default handlers back, so a
    # signal in that window would end the process with 130/143 or be lost.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (| head), or a closed stream
            pass
    os._exit(code or 0)


def _main(argv: list[str] | None) -> None:
    from chaos.signals import INTERRUPTS, Interrupted
    args = list(sys.argv[1:] if argv is None else argv)
    if _verb(args) not in SIGNAL_AWARE:
        INTERRUPTS.uninstall()  # other verbs keep Python's own Ctrl-C
        if INTERRUPTS.received:
            sys.exit(130)
    verbose = "--verbose" in args or "-v" in args[:1]
    try:
        cli.main(args=argv, prog_name="roomquake", standalone_mode=False)
        INTERRUPTS.check()  # a signal that came while a verb had no checkpoint left still ends in exit 3
    except Interrupted as sig:
        click.echo(f"roomquake: {sig}", err=True)
        sys.exit(3)
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
