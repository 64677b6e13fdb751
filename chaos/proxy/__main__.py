"""``python -m chaos.proxy [--host H] [--port P] [--config F] [--seed N] [--token-env VAR]``."""

from chaos.proxy.cli import main

if __name__ == "__main__":
    main()
