"""A Compose healthcheck as a health check roomquake runs from the host.

roomquake polls health from the host (on the port it publishes on
127.0.0.1), the same for every stack. A Compose healthcheck is a command run
inside the container; the common ones have a host-side twin:

- ``curl -f http://localhost:8000/health``, ``wget --spider http://...`` -> ``http`` on that path;
- ``redis-cli ping`` -> ``redis`` (PING);
- ``pg_isready``, ``mysqladmin ping``, ``nc -z localhost 5432`` -> ``tcp``;

anything else becomes ``tcp`` on the service's port (``none`` for a service
that listens on no port: healthy once running), and the import says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chaos.compose.services import ComposeService

_URL = re.compile(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(\d+))?(/[^\s'\"|;&]*)?")
_TCP_TOOLS = ("pg_isready", "mysqladmin", "mariadb-admin", "nc -z", "nc -vz", "netcat")


@dataclass(frozen=True)
class Health:
    spec: dict[str, Any]  # the stack file's health mapping
    note: str  # how it was derived, for the file's header


def _timeout(service: ComposeService) -> float:
    """Compose's own patience (start period, then retries at its interval), at least the stack's 60 s."""
    hc = service.healthcheck
    if hc is None:
        return 60.0
    interval, timeout, retries = hc.interval_s or 30.0, hc.timeout_s or 30.0, hc.retries or 3
    return max(60.0, round((hc.start_period_s or 0.0) + retries * interval + timeout))


def derive(service: ComposeService, port: int | None) -> Health:
    if port is None:
        return Health({"kind": "none"}, "listens on no port: healthy once running")
    hc = service.healthcheck
    timeout = _timeout(service)
    base = {"timeout_s": timeout} if timeout != 60.0 else {}
    if hc is None:
        why = "healthcheck disabled" if service.healthcheck_disabled else "no healthcheck"
        return Health({"kind": "tcp", **base}, f"{why}: a TCP check of port {port}")
    text = hc.as_text()
    url = _URL.search(text)
    if url and ("curl" in text or "wget" in text):
        url_port = int(url.group(1)) if url.group(1) else 80
        if url_port == port:
            return Health({"kind": "http", "path": url.group(2) or "/", **base}, f"healthcheck {text!r}: HTTP GET {url.group(2) or '/'}")
        return Health({"kind": "tcp", **base}, f"healthcheck {text!r} asks port {url_port}, not the service's {port}: a TCP check of {port}")
    if "redis-cli" in text and "ping" in text.lower() and " -a " not in f" {text} ":
        return Health({"kind": "redis", **base}, f"healthcheck {text!r}: Redis PING")
    if any(tool in text for tool in _TCP_TOOLS):
        return Health({"kind": "tcp", **base}, f"healthcheck {text!r}: a TCP check of port {port}")
    return Health({"kind": "tcp", **base}, f"healthcheck {text!r} runs inside the container; roomquake checks from the host: "
                                           f"a TCP check of port {port}")
