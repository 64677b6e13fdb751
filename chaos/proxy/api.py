"""Toxiproxy 2.12's HTTP API: its routes (gorilla/mux semantics), bodies,
status codes, content types and headers, over :mod:`chaos.proxy.http`.

As in Toxiproxy: a path that is not clean is redirected (301); a route whose
path matches but method does not is 405 with an empty body; any other path
is Go's ``404 page not found``; only matched routes get an
``X-Toxiproxy-Request-Id`` and refuse browsers (403). API errors are written
the way Go's ``http.Error`` writes them: JSON text, ``text/plain``, a
trailing newline.

Beyond Toxiproxy: an optional bearer token (:class:`Api` ``token``; none by
default) and ``/metrics`` always served.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import os
import posixpath
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from chaos.proxy import gojson
from chaos.proxy.http import Request, Response
from chaos.proxy.registry import VERSION, ApiError, Registry

log = logging.getLogger("chaos.proxy")

Handler = Callable[[Request, dict[str, str]], Awaitable[Response]]


# ------------------------------------------------------------------ responses


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, [("Content-Type", "application/json")], gojson.dumps(data).encode())


def go_error(status: int, text: str) -> Response:
    """Go's ``http.Error``."""
    return Response(status, [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
                    (text + "\n").encode())


def api_error(err: ApiError) -> Response:
    return go_error(err.status, gojson.dumps({"error": err.message, "status": err.status}))


def no_content() -> Response:
    return Response(204)


class _RequestIds:
    """IDs shaped as the xid values Toxiproxy's request-id middleware sends
    (20 characters of base32hex: time, machine, process, counter)."""

    _ALPHABET = "0123456789abcdefghijklmnopqrstuv"

    def __init__(self) -> None:
        self._machine = secrets.token_bytes(3)
        self._pid = (os.getpid() & 0xFFFF).to_bytes(2, "big")
        self._counter = itertools.count(int.from_bytes(secrets.token_bytes(3), "big"))

    def next(self) -> str:
        raw = (int(time.time()).to_bytes(4, "big") + self._machine + self._pid
               + (next(self._counter) & 0xFFFFFF).to_bytes(3, "big"))
        number = int.from_bytes(raw, "big") << 4  # 96 bits -> 20 groups of 5 bits
        return "".join(self._ALPHABET[(number >> (5 * (19 - i))) & 31] for i in range(20))


# ------------------------------------------------------------------ the app


class Api:
    """Routes requests to the registry; call it with a :class:`Request`."""

    def __init__(self, registry: Registry, *, token: str | None = None) -> None:
        self.registry = registry
        self.token = token or None
        self._ids = _RequestIds()
        self.routes: list[tuple[tuple[str, ...], dict[str, Handler]]] = [
            (("reset",), {"POST": self.reset}),
            (("proxies",), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (("populate",), {"POST": self.populate}),
            (("proxies", "{proxy}"), {"GET": self.proxy_show, "POST": self.proxy_update,
                                      "PATCH": self.proxy_update, "DELETE": self.proxy_delete}),
            (("proxies", "{proxy}", "toxics"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (("proxies", "{proxy}", "toxics", "{toxic}"), {"GET": self.toxic_show, "POST": self.toxic_update,
                                                           "PATCH": self.toxic_update, "DELETE": self.toxic_delete}),
            (("version",), {"GET": self.version}),
            (("metrics",), {"*": self.metrics}),
        ]

    async def __call__(self, request: Request) -> Response:
        if self.token is not None and not self._authorized(request):
            resp = Response(401, [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")],
                            gojson.dumps({"error": "missing or wrong API token", "status": 401}).encode())
            return resp
        path = request.path
        clean = _clean_path(path)
        if clean != path:
            location = quote(clean) + (f"?{request.query}" if request.query else "")
            return Response(301, [("Location", location)])
        handler, params, path_matched = self._route(request.method, path)
        if handler is None:
            if path_matched:
                return Response(405)
            return go_error(404, "404 page not found")
        resp = await self._run(handler, request, params)
        resp.headers.append(("X-Toxiproxy-Request-Id", self._ids.next()))
        return resp

    def _authorized(self, request: Request) -> bool:
        scheme, _, given = request.header("Authorization").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())  # type: ignore[union-attr]

    def _route(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        parts = path.split("/")[1:]
        path_matched = False
        for pattern, methods in self.routes:
            if len(pattern) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(pattern, parts):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                handler = methods.get(method) or methods.get("*")
                if handler is not None:
                    return handler, params, True
                path_matched = True
        return None, {}, path_matched

    async def _run(self, handler: Handler, request: Request, params: dict[str, str]) -> Response:
        if request.header("User-Agent").startswith("Mozilla/"):
            return go_error(403, "User agent not allowed")
        try:
            return await handler(request, params)
        except ApiError as err:
            if err.status >= 500:
                log.warning("%s %s: %s", request.method, request.path, err.message)
            return api_error(err)

    # -- handlers ------------------------------------------------------------------
    async def version(self, request: Request, params: dict[str, str]) -> Response:
        body = f'{{"version": "{VERSION}"}}\n'.encode()
        return Response(200, [("Content-Type", "application/json;charset=utf-8")], body)

    async def proxy_index(self, request: Request, params: dict[str, str]) -> Response:
        proxies = self.registry.proxies
        return json_response(gojson.sorted_map({name: p.as_json() for name, p in proxies.items()}))

    async def proxy_create(self, request: Request, params: dict[str, str]) -> Response:
        proxy = await self.registry.create(request.body)
        return json_response(proxy.as_json(), 201)

    async def populate(self, request: Request, params: dict[str, str]) -> Response:
        try:
            proxies, err = await self.registry.populate(request.body)
        except ApiError as bad:
            proxies, err = [], bad
        data: dict[str, Any] = {}
        if err is not None:
            log.warning("populate: %s", err.message)
            data = {"error": err.message, "status": err.status}
        data["proxies"] = [p.as_json() for p in proxies] or None  # Go marshals an empty result as null
        return json_response(data, err.status if err else 201)

    async def proxy_show(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(self.registry.get(params["proxy"]).as_json())

    async def proxy_update(self, request: Request, params: dict[str, str]) -> Response:
        if request.method == "POST":
            log.debug("ProxyUpdate: HTTP method POST is deprecated; use PATCH")
        proxy = await self.registry.update(params["proxy"], request.body)
        return json_response(proxy.as_json())

    async def proxy_delete(self, request: Request, params: dict[str, str]) -> Response:
        await self.registry.delete(params["proxy"])
        return no_content()

    async def toxic_index(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(self.registry.get(params["proxy"]).toxic_list())

    async def toxic_create(self, request: Request, params: dict[str, str]) -> Response:
        spec = self.registry.add_toxic(params["proxy"], request.body)
        return json_response(spec.as_json())

    async def toxic_show(self, request: Request, params: dict[str, str]) -> Response:
        return json_response(self.registry.get_toxic(params["proxy"], params["toxic"]).as_json())

    async def toxic_update(self, request: Request, params: dict[str, str]) -> Response:
        spec = self.registry.update_toxic(params["proxy"], params["toxic"], request.body)
        return json_response(spec.as_json())

    async def toxic_delete(self, request: Request, params: dict[str, str]) -> Response:
        self.registry.remove_toxic(params["proxy"], params["toxic"])
        return no_content()

    async def reset(self, request: Request, params: dict[str, str]) -> Response:
        await self.registry.reset()
        return no_content()

    async def metrics(self, request: Request, params: dict[str, str]) -> Response:
        return Response(200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                        self.registry.metrics_text().encode())


def _clean_path(path: str) -> str:
    """gorilla/mux's cleanPath: Go's path.Clean, keeping a trailing slash."""
    if not path:
        return "/"
    if not path.startswith("/"):
        path = "/" + path
    clean = posixpath.normpath(path)
    if clean.startswith("//"):  # posixpath keeps a leading "//"; Go does not
        clean = "/" + clean.lstrip("/")
    if path.endswith("/") and clean != "/":
        clean += "/"
    return clean
