"""The journal: one JSON file per run, enough to draw the whole timeline afterwards.

The runner hands it every event (it is a subscriber like the progress
display); at the end it adds the probe time series, the faults and the
verdict and writes the file atomically.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from chaos.run.events import Event

FORMAT = 1


def default_dir() -> Path:
    return Path(os.environ.get("ROOMQUAKE_JOURNAL_DIR", "journals"))


def _clean(value: Any) -> Any:
    """JSON without NaN/Infinity (not valid JSON) and with tuples as lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass
class Journal:
    path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)

    def __call__(self, event: Event) -> None:
        self.events.append(event.to_json())

    def write(self, **sections: Any) -> Path:
        try:
            version = metadata.version("roomquake")
        except metadata.PackageNotFoundError:
            version = "unknown"
        doc = {
            "format": FORMAT,
            "roomquake": version,
            "host": socket.gethostname(),
            "python": platform.python_version(),
            "written": time.time(),
            **self.header,
            **sections,
            "events": self.events,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(_clean(doc), indent=1, default=str), encoding="utf-8")
        tmp.replace(self.path)
        return self.path


def read(path: str | Path) -> dict[str, Any]:
    journal: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return journal
