"""The services' package lives in docker/ (images run it with PYTHONPATH=docker); import it the same way."""

import sys
from pathlib import Path

DOCKER_DIR = str(Path(__file__).resolve().parents[3] / "docker")
if DOCKER_DIR not in sys.path:
    sys.path.insert(0, DOCKER_DIR)
