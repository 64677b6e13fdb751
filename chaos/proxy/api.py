"""Toxiproxy 2.x HTTP API over aiohttp: routes, bodies, status codes.

Error replies are written the way Go's ``http.Error`` writes them (JSON text,
``text/plain`` content type, trailing newline) so clients that parse either
way keep working.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from chaos.proxy.registry import VERSION, ApiError, Registry

log = logging.getLogger("chaos.proxy")
REGISTRY_KEY = web.AppKey("registry", Registry)
_request_ids = itertools.count(1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    body = json.dumps({"error": message, "status": status}) + "\n"
    resp = web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "bad request body: EOF")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, f"bad request body: {err}") from None


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        resp: web.StreamResponse = web.Response(text="User agent not allowed\n", status=403)
    else:
        try:
            resp = await handler(request)
        except ApiError as err:
            if err.status >= 500:
                log.warning("%s %s: %s", request.method, request.path, err.message)
            resp = _error(err.status, err.message)
        except web.HTTPException as err:
            resp = _error(err.status, err.reason)
    resp.headers["X-Toxiproxy-Request-Id"] = f"rq{next(_request_ids):012d}"
    return resp


def _reg(request: web.Request) -> Registry:
    return request.app[REGISTRY_KEY]


async def version(request: web.Request) -> web.Response:
    body = json.dumps({"version": VERSION}) + "\n"
    return web.Response(text=body, content_type="application/json", charset="utf-8")


async def proxy_index(request: web.Request) -> web.Response:
    return _json({name: p.as_json() for name, p in _reg(request).proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    proxy = await _reg(request).create(await _body(request))
    return _json(proxy.as_json(), status=201)


async def populate(request: web.Request) -> web.Response:
    proxies, err = await _reg(request).populate(await _body(request))
    data: dict[str, Any] = {}
    if err is not None:
        data = {"error": err.message, "status": err.status}
    data["proxies"] = [p.as_json() for p in proxies]
    return _json(data, status=err.status if err else 201)


async def proxy_show(request: web.Request) -> web.Response:
    return _json(_reg(request).get(request.match_info["proxy"]).as_json())


async def proxy_update(request: web.Request) -> web.Response:
    reg = _reg(request)
    name = request.match_info["proxy"]
    reg.get(name)  # 404 before reading the body, as Toxiproxy
    proxy = await reg.update(name, await _body(request))
    return _json(proxy.as_json())


async def proxy_delete(request: web.Request) -> web.Response:
    await _reg(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    return _json(_reg(request).get(request.match_info["proxy"]).toxic_list())


async def toxic_create(request: web.Request) -> web.Response:
    reg = _reg(request)
    reg.get(request.match_info["proxy"])
    spec = reg.add_toxic(request.match_info["proxy"], await _body(request))
    return _json(spec.as_json())


async def toxic_show(request: web.Request) -> web.Response:
    return _json(_reg(request).get_toxic(request.match_info["proxy"], request.match_info["toxic"]).as_json())


async def toxic_update(request: web.Request) -> web.Response:
    reg = _reg(request)
    reg.get_toxic(request.match_info["proxy"], request.match_info["toxic"])
    spec = reg.update_toxic(request.match_info["proxy"], request.match_info["toxic"], await _body(request))
    return _json(spec.as_json())


async def toxic_delete(request: web.Request) -> web.Response:
    _reg(request).remove_toxic(request.match_info["proxy"], request.match_info["toxic"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    await _reg(request).reset()
    return web.Response(status=204)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=_reg(request).metrics_text(), content_type="text/plain", charset="utf-8")


def make_app(registry: Registry) -> web.Application:
    app = web.Application(middlewares=[_middleware])
    app[REGISTRY_KEY] = registry
    r = app.router
    r.add_get("/version", version)
    r.add_get("/metrics", metrics)
    r.add_post("/reset", reset)
    r.add_get("/proxies", proxy_index)
    r.add_post("/proxies", proxy_create)
    r.add_post("/populate", populate)
    r.add_get("/proxies/{proxy}", proxy_show)
    r.add_post("/proxies/{proxy}", proxy_update)
    r.add_patch("/proxies/{proxy}", proxy_update)
    r.add_delete("/proxies/{proxy}", proxy_delete)
    r.add_get("/proxies/{proxy}/toxics", toxic_index)
    r.add_post("/proxies/{proxy}/toxics", toxic_create)
    r.add_get("/proxies/{proxy}/toxics/{toxic}", toxic_show)
    r.add_post("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    r.add_patch("/proxies/{proxy}/toxics/{toxic}", toxic_update)
    r.add_delete("/proxies/{proxy}/toxics/{toxic}", toxic_delete)
    return app
