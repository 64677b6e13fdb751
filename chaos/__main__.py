# The signal handler first, before anything else loads: Ctrl-C or SIGTERM from
# here on ends `roomquake run` with exit 3 (chaos.signals).
from chaos.signals import INTERRUPTS

INTERRUPTS.install()

from chaos.cli.main import main  # noqa: E402

if __name__ == "__main__":
    main()
