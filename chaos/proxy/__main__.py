"""``python -m chaos.proxy [--host H] [--port P] [--config F] [--seed N]``."""

from chaos.cli.proxy import serve_main

if __name__ == "__main__":
    serve_main()
