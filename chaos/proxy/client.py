"""The toolkit's only way to talk to a Toxiproxy server (ours or a real one).

A thin typed layer over one ``requests.Session`` per client, bound to one
server. toxiproxy-python is not used here: it keeps the server's host and
port on a *class* (``APIConsumer``) and calls the ``requests`` module
directly, so it serves one server per process, has no timeout, and maps only
three statuses to exceptions. Binding it per client meant swapping those
globals under a lock; the Toxiproxy API is eight small JSON calls, so
speaking it directly is shorter and has no shared state.

Every error response becomes one typed exception, picked by one table
(:data:`ERRORS`, by status and Toxiproxy's error text). Transient failures
(connection refused or reset, and timeouts of idempotent calls) are retried
a bounded number of times with tenacity.

    client = ProxyClient("http://127.0.0.1:8474")          # token="..." for a guarded server
    client.create("crowd->edge-1", "127.0.0.1:0", "127.0.0.1:8765")
    name = client.add_toxic("crowd->edge-1", "latency", attributes={"latency": 300})
    client.remove_toxic("crowd->edge-1", name)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import tenacity

from chaos.errors import RoomquakeError

DEFAULT_URL = "http://127.0.0.1:8474"


# -------------------------------------------------------------------- errors


class ProxyClientError(RoomquakeError):
    """A Toxiproxy request failed; says which server, proxy and toxic."""

    def __init__(self, what: str, server: str, *, proxy: str | None = None, toxic: str | None = None,
                 status: int | None = None) -> None:
        where = []
        if toxic:
            where.append(f"toxic {toxic!r}")
        if proxy:
            where.append(f"{'on ' if toxic else ''}proxy {proxy!r}")
        subject = " ".join(where)
        super().__init__(f"{subject + ' ' if subject else ''}at {server}: {what}")
        self.what = what
        self.server = server
        self.proxy = proxy
        self.toxic = toxic
        self.status = status


class ProxyServerUnreachable(ProxyClientError):
    """No answer: refused, reset, or no reply within the timeout."""


class ProxyNotFound(ProxyClientError):
    pass


class ToxicNotFound(ProxyClientError):
    pass


class ProxyExistsError(ProxyClientError):
    pass


class ToxicExistsError(ProxyClientError):
    pass


class ProxyRequestInvalid(ProxyClientError):
    """The server answered 400: a bad attribute, type or stream."""


class ProxyUnauthorized(ProxyClientError):
    """The server requires an API token (401) and none or another was sent."""


class ProxyServerError(ProxyClientError):
    """The server answered 5xx (e.g. a listen address already in use)."""


# One table: (status, Toxiproxy's error text) first, then the status alone.
ERRORS: dict[int | tuple[int, str], type[ProxyClientError]] = {
    (404, "toxic not found"): ToxicNotFound,
    (409, "toxic already exists"): ToxicExistsError,
    400: ProxyRequestInvalid,
    401: ProxyUnauthorized,
    404: ProxyNotFound,
    409: ProxyExistsError,
}


def error_class(status: int, message: str) -> type[ProxyClientError]:
    found = ERRORS.get((status, message)) or ERRORS.get(status)
    if found is not None:
        return found
    return ProxyServerError if status >= 500 else ProxyClientError


# -------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class ToxicInfo:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ToxicInfo:
        return cls(data["name"], data["type"], data.get("stream", "downstream"),
                   float(data.get("toxicity", 1.0)), dict(data.get("attributes") or {}))


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProxyInfo:
        return cls(data["name"], data["listen"], data["upstream"], bool(data["enabled"]),
                   tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()))

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


# -------------------------------------------------------------------- transport


class _Transient(Exception):
    """A failure worth retrying; carries the error to raise if retries run out."""

    def __init__(self, error: ProxyClientError) -> None:
        super().__init__(str(error))
        self.error = error


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
    except ValueError:
        pass
    return response.text.strip() or response.reason or f"HTTP {response.status_code}"


def _reason(err: Exception) -> str:
    text = str(err)
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "timed out"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:120]


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


# -------------------------------------------------------------------- client


class ProxyClient:
    """One Toxiproxy server. Safe to use alongside clients of other servers."""

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 5.0,
                 attempts: int = 4, retry_for: float = 10.0) -> None:
        self.url = (url or os.environ.get("TOXIPROXY_URL") or DEFAULT_URL).rstrip("/")
        if "://" not in self.url:
            self.url = f"http://{self.url}"
        parts = urlsplit(self.url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port:
            raise RoomquakeError(f"Toxiproxy URL {self.url!r} needs a host and a port, e.g. {DEFAULT_URL}")
        self.timeout = timeout
        self._token = token
        self._attempts = attempts
        self._retry_for = retry_for
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "roomquake"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ProxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------
    def _once(self, method: str, path: str, body: Any, idempotent: bool, proxy: str | None,
              toxic: str | None) -> requests.Response:
        try:
            response = self._session.request(method, self.url + path, json=body, timeout=self.timeout)
        except requests.ConnectionError as err:
            raise _Transient(ProxyServerUnreachable(f"cannot connect ({_reason(err)})", self.url,
                                                    proxy=proxy, toxic=toxic)) from None
        except requests.Timeout:
            error = ProxyServerUnreachable(f"no answer within {self.timeout:g}s", self.url, proxy=proxy, toxic=toxic)
            if idempotent:
                raise _Transient(error) from None
            raise error from None
        if response.status_code >= 400:
            message = _message(response)
            raise error_class(response.status_code, message)(message, self.url, proxy=proxy, toxic=toxic,
                                                              status=response.status_code)
        return response

    def _call(self, method: str, path: str, body: Any = None, *, idempotent: bool, proxy: str | None = None,
              toxic: str | None = None) -> requests.Response:
        try:
            for attempt in tenacity.Retrying(
                stop=tenacity.stop_after_attempt(self._attempts) | tenacity.stop_after_delay(self._retry_for),
                wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
                retry=tenacity.retry_if_exception_type(_Transient),
                reraise=True,
            ):
                with attempt:
                    return self._once(method, path, body, idempotent, proxy, toxic)
        except _Transient as transient:
            raise transient.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- server --------------------------------------------------------------
    def version(self) -> str:
        text = self._call("GET", "/version", idempotent=True).text.strip()
        try:
            return str(json.loads(text)["version"])
        except (ValueError, KeyError, TypeError):
            return text  # before 2.7 the version was plain text

    def wait_ready(self, timeout: float = 10.0) -> str:
        """Poll /version until the server answers; returns its version."""
        probe = ProxyClient(self.url, self._token, timeout=min(self.timeout, 1.0), attempts=10_000,
                            retry_for=timeout)
        try:
            return probe.version()
        finally:
            probe.close()

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._call("POST", "/reset", idempotent=True)

    # -- proxies -------------------------------------------------------------
    def proxies(self) -> dict[str, ProxyInfo]:
        data = self._call("GET", "/proxies", idempotent=True).json()
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    def get(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._call("GET", _path("proxies", name), idempotent=True, proxy=name).json())

    def create(self, name: str, listen: str, upstream: str, *, enabled: bool = True) -> ProxyInfo:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyInfo.from_json(self._call("POST", "/proxies", body, idempotent=False, proxy=name).json())

    def populate(self, proxies: list[dict[str, Any]]) -> list[ProxyInfo]:
        """Create or replace many proxies at once (server-side /populate)."""
        data = self._call("POST", "/populate", proxies, idempotent=True).json()
        return [ProxyInfo.from_json(p) for p in (data.get("proxies") or [])]

    def delete(self, name: str) -> None:
        self._call("DELETE", _path("proxies", name), idempotent=True, proxy=name)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """``False`` is the "down" fault: the proxy stops listening and cuts its connections."""
        # POST rather than PATCH: every Toxiproxy 2.x takes it (PATCH came in 2.6)
        self._call("POST", _path("proxies", name), {"enabled": enabled}, idempotent=True, proxy=name)

    # -- toxics --------------------------------------------------------------
    def add_toxic(self, proxy: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  attributes: dict[str, Any] | None = None, name: str | None = None) -> str:
        """Add a toxic; returns its name."""
        toxic_name = name or f"{type}_{stream}"
        body = {"name": toxic_name, "type": type, "stream": stream, "toxicity": toxicity,
                "attributes": attributes or {}}
        self._call("POST", _path("proxies", proxy, "toxics"), body, idempotent=False, proxy=proxy, toxic=toxic_name)
        return toxic_name

    def toxics(self, proxy: str) -> dict[str, ToxicInfo]:
        data = self._call("GET", _path("proxies", proxy, "toxics"), idempotent=True, proxy=proxy).json()
        return {t["name"]: ToxicInfo.from_json(t) for t in data}

    def update_toxic(self, proxy: str, name: str, *, attributes: dict[str, Any] | None = None,
                     toxicity: float | None = None) -> ToxicInfo:
        """Merge ``attributes`` (and ``toxicity``) onto the toxic; live connections follow."""
        body: dict[str, Any] = {"attributes": attributes or {}}
        if toxicity is not None:
            body["toxicity"] = toxicity
        data = self._call("POST", _path("proxies", proxy, "toxics", name), body, idempotent=True, proxy=proxy,
                          toxic=name).json()
        return ToxicInfo.from_json(data)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", _path("proxies", proxy, "toxics", name), idempotent=True, proxy=proxy, toxic=name)
