"""How a command line ends: one mapping from what a command raised to a message and an exit code.

Used by ``roomquake`` (chaos/cli/main.py) and by the fault proxy's own
``python -m chaos.proxy`` (chaos/proxy/cli.py), which must not import
chaos.cli. Exit codes: 2 usage errors (``RoomquakeError.exit_code`` says
otherwise where it differs), 3 interrupted by a signal at a checkpoint,
130 interrupted at a prompt or by Python's own Ctrl-C.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from chaos.errors import RoomquakeError
from chaos.signals import Interrupted


@contextlib.contextmanager
def exit_codes(prog: str, verbose: bool = False) -> Iterator[None]:
    """Run a click command (``standalone_mode=False``) inside; errors become one line on stderr and an exit.

    ``verbose`` lets a ``RoomquakeError`` through with its traceback.
    """
    try:
        yield
    except Interrupted as sig:
        click.echo(f"{prog}: {sig}", err=True)
        sys.exit(3)
    except click.exceptions.Abort:
        click.echo(f"{prog}: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except RoomquakeError as err:
        if verbose:
            raise
        click.echo(f"{prog}: error: {err.one_line()}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo(f"{prog}: interrupted", err=True)
        sys.exit(130)
