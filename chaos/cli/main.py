"""Entry point of ``roomquake``: a click group whose verbs load lazily.

Each verb is a module in ``chaos.cli`` exposing a click command named
``command``. Listing the verbs (``roomquake --help``) reads the table below
and imports none of them; running a verb imports only its module, so the
command answers at once (``bench/cli.py`` measures it).
User errors (``RoomquakeError``) become one line on stderr and an exit code
(chaos.exits, shared with ``python -m chaos.proxy``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import signal
import sys

import click

from chaos.exits import exit_codes

# pydantic looks up third-party plugins among every installed distribution's
# entry points the first time a model is built: ~30 ms of each command, for
# plugins that have nothing to do with roomquake's own models. A user who sets
# the variable keeps their choice.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# verb -> (module in chaos.cli, one-line help shown by `roomquake --help`).
# A verb whose module does not exist is hidden.
VERBS: dict[str, tuple[str, str]] = {
    "run": ("chaos.cli.run", "Run experiment files and print their timeline and verdict."),
    "validate": ("chaos.cli.validate", "Check experiment files; every problem as file:line:col."),
    "list": ("chaos.cli.list_cmd", "List the experiments in a folder, with title and tags."),
    "init": ("chaos.cli.init", "Start a project: copy the shipped experiments into a folder."),
    "schema": ("chaos.cli.schema", "Print the JSON Schema of experiment files, for editors."),
    "stack": ("chaos.cli.stack", "Bring a stack up, show it, take it down."),
    "proxy": ("chaos.cli.proxy", "Serve the Toxiproxy-compatible fault proxy."),
    "images": ("chaos.cli.images", "Build and list the stack's images (offline)."),
    "report": ("chaos.cli.report", "Write the HTML report of a run from its journal."),
    "history": ("chaos.cli.history", "Check the listeners' histories of a running stack (gaps, split brain, who came back)."),
    "gameday": ("chaos.cli.gameday", "Run an experiment step by step with a live dashboard."),
    "explore": ("chaos.cli.explore", "Search fault schedules for the smallest one that breaks an experiment's invariants."),
    "clean": ("chaos.cli.clean", "Remove what killed runs left behind."),
    "cluster": ("chaos.cli.cluster", "A multi-node swarm on this machine (namespaces, one engine per node)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(verb for verb, (module, _) in VERBS.items() if importlib.util.find_spec(module))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = VERBS.get(name, ("", ""))[0]
        if not module or importlib.util.find_spec(module) is None:
            return None
        command: click.Command = importlib.import_module(module).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The verbs and their one-line help from the table, without importing any of them."""
        rows = [(verb, VERBS[verb][1]) for verb in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="roomquake")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """roomquake: chaos experiments for live audio-room services.

    \b
    Exit codes: 0 passed or valid, 1 deviated, 2 invalid input (a file that is
    invalid, missing, unreadable or a folder; a bad flag), 3 aborted, 4 errored.

    \b
    Example:
      roomquake init my-project && cd my-project
      roomquake run experiments/edge-loss.yaml
    """
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose


# Verbs that act on Ctrl-C and SIGTERM at their checkpoints (chaos.signals): for
# them a signal means exit 3 (aborted) from the process's first instant on.
SIGNAL_AWARE = ("run", "gameday", "stack", "explore")


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
    from chaos.signals import INTERRUPTS

    args = list(sys.argv[1:] if argv is None else argv)
    if _verb(args) not in SIGNAL_AWARE:
        INTERRUPTS.uninstall()  # other verbs keep Python's own Ctrl-C
        if INTERRUPTS.received:
            sys.exit(130)
    verbose = "--verbose" in args or "-v" in args[:1]
    # Third-party pydantic plugins (observability hooks) are looked up through
    # every installed package's entry points on the first model: a few ms the
    # CLI does not need. Set PYDANTIC_DISABLE_PLUGINS= (empty) to load them.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    with exit_codes("roomquake", verbose):
        cli.main(args=argv, prog_name="roomquake", standalone_mode=False)
        INTERRUPTS.check()  # a signal that came while a verb had no checkpoint left still ends in exit 3
