"""The toolkit's only way to talk to a Toxiproxy server (ours or a real one).

Built on toxiproxy-python, whose host, port and HTTP calls live on the
*class* ``APIConsumer``: two servers at once would trample each other. Every
call here therefore runs under one process-wide lock with the class pointed
at this client's server and its HTTP calls routed through this client's
session (bounded timeout, typed errors). Transient failures (connection
refused or reset, and timeouts of idempotent calls) are retried a bounded
number of times with tenacity.

    client = ProxyClient("http://127.0.0.1:8474")
    client.create("crowd->edge-1", "127.0.0.1:0", "127.0.0.1:8765")
    name = client.add_toxic("crowd->edge-1", "latency", attributes={"latency": 300})
    client.remove_toxic("crowd->edge-1", name)
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import tenacity
import toxiproxy.api as tp_api
from toxiproxy import Proxy, Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from chaos.errors import RoomquakeError

DEFAULT_URL = "http://127.0.0.1:8474"
T = TypeVar("T")

# toxiproxy-python keeps host, port and ``requests`` at class/module level
_CLASS_LOCK = threading.RLock()


# -------------------------------------------------------------------- errors


class ProxyClientError(RoomquakeError):
    """A Toxiproxy request failed; says which server, proxy and toxic."""

    def __init__(self, what: str, server: str, *, proxy: str | None = None, toxic: str | None = None) -> None:
        where = []
        if toxic:
            where.append(f"toxic {toxic!r}")
        if proxy:
            where.append(f"{'on ' if toxic else ''}proxy {proxy!r}")
        subject = " ".join(where)
        super().__init__(f"{subject + ' ' if subject else ''}at {server}: {what}")
        self.server = server
        self.proxy = proxy
        self.toxic = toxic


class ProxyServerUnreachable(ProxyClientError):
    pass


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


class ProxyServerError(ProxyClientError):
    """The server answered 5xx (e.g. a listen address already in use)."""


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


class _Transport:
    """Stands in for the ``requests`` module inside toxiproxy.api during a call."""

    def __init__(self, client: ProxyClient, idempotent: bool) -> None:
        self._client = client
        self._idempotent = idempotent

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        c = self._client
        try:
            response = c._session.request(method, url, timeout=c.timeout, **kwargs)
        except requests.ConnectionError as err:
            raise _Transient(ProxyServerUnreachable(f"cannot connect ({_reason(err)})", c.url)) from None
        except requests.Timeout:
            error = ProxyServerUnreachable(f"no answer within {c.timeout:g}s", c.url)
            if self._idempotent:
                raise _Transient(error) from None
            raise error from None
        if response.status_code >= 500:
            c._last_error_message = _message(response)
            raise ProxyServerError(c._last_error_message, c.url)
        if response.status_code >= 400:
            c._last_error_message = _message(response)
        return response

    def get(self, url: str, params: Any = None, **kwargs: Any) -> requests.Response:
        return self._send("GET", url, params=params, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        return self._send("POST", url, data=data, json=json, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("DELETE", url, **kwargs)


def _reason(err: Exception) -> str:
    text = str(err)
    for marker in ("Connection refused", "Connection reset", "Name or service not known", "timed out"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:120]


# -------------------------------------------------------------------- client


class ProxyClient:
    """One Toxiproxy server. Safe to use alongside clients of other servers."""

    def __init__(self, url: str | None = None, *, timeout: float = 5.0, attempts: int = 4,
                 retry_for: float = 10.0) -> None:
        self.url = (url or os.environ.get("TOXIPROXY_URL") or DEFAULT_URL).rstrip("/")
        parts = urlsplit(self.url if "://" in self.url else f"http://{self.url}")
        if not parts.hostname or not parts.port:
            raise RoomquakeError(f"Toxiproxy URL {self.url!r} needs a host and a port, e.g. {DEFAULT_URL}")
        self._host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self._port = parts.port
        self.timeout = timeout
        self._attempts = attempts
        self._retry_for = retry_for
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "roomquake"
        self._last_error_message = ""

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ProxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------
    @contextlib.contextmanager
    def _bound(self, idempotent: bool) -> Iterator[None]:
        with _CLASS_LOCK:
            saved = (APIConsumer.host, APIConsumer.port, tp_api.requests)
            APIConsumer.host, APIConsumer.port = self._host, self._port
            tp_api.requests = _Transport(self, idempotent)  # type: ignore[assignment]
            try:
                yield
            finally:
                APIConsumer.host, APIConsumer.port, tp_api.requests = saved

    def _call(self, fn: Callable[[], T], *, idempotent: bool, proxy: str | None = None,
              toxic: str | None = None) -> T:
        def once() -> T:
            with self._bound(idempotent):
                try:
                    return fn()
                except NotFound:
                    if toxic is not None and "toxic" in self._last_error_message:
                        raise ToxicNotFound("not found", self.url, proxy=proxy, toxic=toxic) from None
                    raise ProxyNotFound("not found", self.url, proxy=proxy) from None
                except ProxyExists:
                    if toxic is not None:
                        raise ToxicExistsError("already exists", self.url, proxy=proxy, toxic=toxic) from None
                    raise ProxyExistsError("already exists", self.url, proxy=proxy) from None
                except InvalidToxic:
                    raise ProxyRequestInvalid(self._last_error_message or "invalid request", self.url,
                                              proxy=proxy, toxic=toxic) from None
                except ProxyClientError as err:
                    if not err.proxy and (proxy or toxic):
                        raise type(err)(str(err).split(": ", 1)[-1], self.url, proxy=proxy, toxic=toxic) from None
                    raise

        try:
            for attempt in tenacity.Retrying(
                stop=tenacity.stop_after_attempt(self._attempts) | tenacity.stop_after_delay(self._retry_for),
                wait=tenacity.wait_exponential(multiplier=0.05, max=1.0),
                retry=tenacity.retry_if_exception_type(_Transient),
                reraise=True,
            ):
                with attempt:
                    return once()
        except _Transient as transient:
            err = transient.error
            raise type(err)(str(err).split(": ", 1)[-1], self.url, proxy=proxy, toxic=toxic) from None
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _proxy(name: str) -> Proxy:
        return Proxy(name=name, upstream="", enabled=True, listen="")

    # -- server --------------------------------------------------------------
    def version(self) -> str:
        raw = self._call(lambda: APIConsumer.get("/version").content, idempotent=True)
        text = raw.decode().strip()
        try:
            return str(json.loads(text)["version"])
        except (ValueError, KeyError, TypeError):
            return text  # before 2.7 the version was plain text

    def wait_ready(self, timeout: float = 10.0) -> str:
        """Poll /version until the server answers; returns its version."""
        probe = ProxyClient(self.url, timeout=min(self.timeout, 1.0), attempts=10_000, retry_for=timeout)
        try:
            return probe.version()
        finally:
            probe.close()

    def reset(self) -> None:
        self._call(lambda: Toxiproxy().reset(), idempotent=True)

    # -- proxies -------------------------------------------------------------
    def proxies(self) -> dict[str, ProxyInfo]:
        data = self._call(lambda: APIConsumer.get("/proxies").json(), idempotent=True)
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    def get(self, name: str) -> ProxyInfo:
        data = self._call(lambda: APIConsumer.get(f"/proxies/{name}").json(), idempotent=True, proxy=name)
        return ProxyInfo.from_json(data)

    def create(self, name: str, listen: str, upstream: str, *, enabled: bool = True) -> ProxyInfo:
        self._call(lambda: Toxiproxy().create(upstream=upstream, name=name, listen=listen, enabled=enabled),
                   idempotent=False, proxy=name)
        return self.get(name)

    def populate(self, proxies: list[dict[str, Any]]) -> list[ProxyInfo]:
        """Create or replace many proxies at once (server-side /populate: validated first)."""
        data = self._call(lambda: APIConsumer.post("/populate", json=proxies).json(), idempotent=True)
        if isinstance(data, dict) and data.get("error"):
            raise ProxyRequestInvalid(str(data["error"]), self.url)
        return [ProxyInfo.from_json(p) for p in (data.get("proxies") or [])]

    def delete(self, name: str) -> None:
        self._call(lambda: self._proxy(name).destroy(), idempotent=True, proxy=name)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """``False`` is the "down" fault: the proxy stops listening and cuts its connections."""
        proxy = self._proxy(name)
        self._call(proxy.enable if enabled else proxy.disable, idempotent=True, proxy=name)

    # -- toxics --------------------------------------------------------------
    def add_toxic(self, proxy: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
                  attributes: dict[str, Any] | None = None, name: str | None = None) -> str:
        """Add a toxic; returns its name (toxiproxy-python's add_toxic returns nothing)."""
        toxic_name = name or f"{type}_{stream}"
        self._call(lambda: self._proxy(proxy).add_toxic(type=type, stream=stream, name=toxic_name,
                                                        toxicity=toxicity, attributes=attributes or {}),
                   idempotent=False, proxy=proxy, toxic=toxic_name)
        return toxic_name

    def toxics(self, proxy: str) -> dict[str, ToxicInfo]:
        data = self._call(lambda: APIConsumer.get(f"/proxies/{proxy}/toxics").json(), idempotent=True, proxy=proxy)
        return {t["name"]: ToxicInfo.from_json(t) for t in data}

    def update_toxic(self, proxy: str, name: str, *, attributes: dict[str, Any] | None = None,
                     toxicity: float | None = None) -> ToxicInfo:
        """Merge ``attributes`` (and ``toxicity``) onto the toxic; live connections follow."""
        body: dict[str, Any] = {"attributes": attributes or {}}
        if toxicity is not None:
            body["toxicity"] = toxicity
        data = self._call(lambda: APIConsumer.post(f"/proxies/{proxy}/toxics/{name}", json=body).json(),
                          idempotent=True, proxy=proxy, toxic=name)
        return ToxicInfo.from_json(data)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call(lambda: self._proxy(proxy).destroy_toxic(name), idempotent=True, proxy=proxy, toxic=name)
