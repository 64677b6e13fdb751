"""The toolkit's way into a stack's proxy API: every client it makes carries the run's token (contract C3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos.proxy.client import ProxyClient


def proxy_client(url: str, token: str | None = None, **options: Any) -> ProxyClient:
    """A ``chaos.proxy.client.ProxyClient`` for ``url``; sends ``Authorization: Bearer`` when ``token`` is set."""
    from chaos.proxy.client import ProxyClient

    if token:
        options["token"] = token
    return ProxyClient(url, **options)
