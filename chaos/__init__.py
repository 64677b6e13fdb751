"""roomquake: chaos engineering for live audio-room services."""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _is_the_command_line() -> bool:
    """``roomquake ...`` or ``python -m chaos ...`` (not a library import, not ``-m chaos.proxy``)."""
    argv: list[str] = getattr(_sys, "orig_argv", _sys.argv)
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1] == "chaos"
    return bool(_sys.argv) and _os.path.basename(_sys.argv[0]) == "roomquake"


if _is_the_command_line():
    # Before anything else loads: from here on a Ctrl-C or SIGTERM is only
    # noted, and `roomquake run` ends with exit 3 (chaos.signals).
    from chaos.signals import INTERRUPTS as _INTERRUPTS

    _INTERRUPTS.install()
