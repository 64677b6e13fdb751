"""The proxies of one server and every operation the HTTP API offers.

Each operation validates first and raises :class:`ApiError` with Toxiproxy
2.12's status and message; nothing changes when validation fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from chaos.proxy import addr
from chaos.proxy.link import ToxicSpec
from chaos.proxy.proxy import STREAMS, Proxy
from chaos.proxy.poller import Poller
from chaos.proxy.timer import PreciseTimer
from chaos.proxy.toxics import REGISTRY, InvalidAttributes

log = logging.getLogger("chaos.proxy")

VERSION = "2.12.0"  # the Toxiproxy API version this server speaks


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_body(detail: str) -> ApiError:
    return ApiError(400, f"bad request body: {detail}")


def _field(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key, default)
    if value is None and default is None:
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise bad_body(f"field {key!r} must be a {kind.__name__}")
    return value


def _check_address(value: str, what: str) -> None:
    try:
        addr.split(value)
    except addr.AddressError as err:
        raise bad_body(f"{what}: {err}") from None


class Registry:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()  # one mutation at a time: binds await
        self._timer: PreciseTimer | None = None
        self._poller: Poller | None = None
        self._given_listen: dict[str, str] = {}

    @property
    def timer(self) -> PreciseTimer:
        if self._timer is None:
            self._timer = PreciseTimer(asyncio.get_running_loop())
        return self._timer

    @property
    def poller(self) -> Poller:
        if self._poller is None:
            self._poller = Poller(asyncio.get_running_loop())
        return self._poller

    # -- proxies -----------------------------------------------------------
    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    def _parse_proxy(self, body: Any, where: str = "") -> tuple[str, str, str, bool]:
        if not isinstance(body, dict):
            raise bad_body(f"expected a proxy object{where}")
        name = _field(body, "name", str, "")
        upstream = _field(body, "upstream", str, "")
        listen = _field(body, "listen", str, "")
        enabled = _field(body, "enabled", bool, True)
        if not name:
            raise ApiError(400, f"missing required field: name{where}")
        if not upstream:
            raise ApiError(400, f"missing required field: upstream{where}")
        _check_address(listen or ":0", "listen")
        _check_address(upstream, "upstream")
        return name, listen or ":0", upstream, enabled

    async def _start(self, proxy: Proxy) -> None:
        try:
            await proxy.start()
        except OSError as err:
            raise ApiError(500, err.strerror or str(err)) from None

    async def create(self, body: Any) -> Proxy:
        name, listen, upstream, enabled = self._parse_proxy(body)
        async with self.lock:
            if name in self.proxies:
                raise ApiError(409, "proxy already exists")
            proxy = Proxy(name, listen, upstream, seed=self.seed, timer=self.timer, poller=self.poller)
            if enabled:
                await self._start(proxy)
            self.proxies[name] = proxy
            self._given_listen[name] = listen
            log.info("proxy %s: %s -> %s%s", name, proxy.listen, upstream, "" if enabled else " (disabled)")
            return proxy

    def _same_place(self, proxy: Proxy, listen: str, upstream: str) -> bool:
        given = self._given_listen.get(proxy.name)
        return upstream == proxy.upstream and listen in (given, proxy.listen)

    async def populate(self, body: Any) -> tuple[list[Proxy], ApiError | None]:
        if not isinstance(body, list):
            raise bad_body("expected an array of proxies")
        wanted = []
        seen: set[str] = set()
        for i, item in enumerate(body):
            parsed = self._parse_proxy(item, f" at proxy {i + 1}")
            if parsed[0] in seen:
                raise bad_body(f"duplicate proxy name {parsed[0]!r}")
            seen.add(parsed[0])
            wanted.append(parsed)
        done: list[Proxy] = []
        async with self.lock:
            for name, listen, upstream, enabled in wanted:
                existing = self.proxies.get(name)
                try:
                    if existing is not None and self._same_place(existing, listen, upstream):
                        if enabled and not existing.enabled:
                            await self._start(existing)
                        elif not enabled and existing.enabled:
                            await existing.stop()
                        done.append(existing)
                        continue
                    if existing is not None:
                        await existing.stop()
                        del self.proxies[name]
                    proxy = Proxy(name, listen, upstream, seed=self.seed, timer=self.timer, poller=self.poller)
                    if enabled:
                        await self._start(proxy)
                    self.proxies[name] = proxy
                    self._given_listen[name] = listen
                    done.append(proxy)
                except ApiError as err:
                    return done, err
        return done, None

    async def update(self, name: str, body: Any) -> Proxy:
        proxy = self.get(name)
        if not isinstance(body, dict):
            raise bad_body("expected a proxy object")
        listen = _field(body, "listen", str, proxy.listen) or ":0"
        upstream = _field(body, "upstream", str, proxy.upstream)
        enabled = _field(body, "enabled", bool, proxy.enabled)
        _check_address(listen, "listen")
        _check_address(upstream, "upstream")
        async with self.lock:
            if not self._same_place(proxy, listen, upstream):
                await proxy.stop()
                if listen != proxy.listen:
                    self._given_listen[name] = listen
                    proxy.listen = listen
                proxy.upstream = upstream
                proxy._upstream_addr = None
            if enabled and not proxy.enabled:
                await self._start(proxy)
            elif not enabled and proxy.enabled:
                await proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            del self.proxies[name]
            self._given_listen.pop(name, None)

    async def reset(self) -> None:
        async with self.lock:
            for proxy in list(self.proxies.values()):
                if not proxy.enabled:
                    await self._start(proxy)
                proxy.reset_toxics()

    async def close(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        if self._poller is not None:
            self._poller.close()
            self._poller = None

    # -- toxics --------------------------------------------------------------
    def get_toxic(self, proxy_name: str, toxic_name: str) -> ToxicSpec:
        spec = self.get(proxy_name).find_toxic(toxic_name)
        if spec is None:
            raise ApiError(404, "toxic not found")
        return spec

    def add_toxic(self, proxy_name: str, body: Any) -> ToxicSpec:
        proxy = self.get(proxy_name)
        if not isinstance(body, dict):
            raise bad_body("expected a toxic object")
        stream = _field(body, "stream", str, "downstream") or "downstream"
        if stream not in STREAMS:
            raise ApiError(400, "stream was invalid, can be either upstream or downstream")
        type_ = _field(body, "type", str, "")
        name = _field(body, "name", str, "") or f"{type_}_{stream}"
        toxicity = _toxicity(body, 1.0)
        cls = REGISTRY.get(type_)
        if cls is None:
            raise ApiError(400, "invalid toxic type")
        if proxy.find_toxic(name) is not None:
            raise ApiError(409, "toxic already exists")
        try:
            toxic = cls.from_attributes(body.get("attributes"))
        except InvalidAttributes as err:
            raise bad_body(str(err)) from None
        spec = ToxicSpec(name, type_, stream, toxicity, toxic)
        proxy.add_toxic(spec)
        log.info("proxy %s: + toxic %s (%s %s, toxicity %g) %s", proxy_name, name, type_, stream, toxicity,
                 toxic.as_json())
        return spec

    def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> ToxicSpec:
        proxy = self.get(proxy_name)
        spec = proxy.find_toxic(toxic_name)
        if spec is None:
            raise ApiError(404, "toxic not found")
        if not isinstance(body, dict):
            raise bad_body("expected a toxic object")
        toxicity = _toxicity(body, spec.toxicity)
        try:
            toxic = type(spec.toxic).from_attributes(body.get("attributes"), base=spec.toxic.as_json())
        except InvalidAttributes as err:
            raise bad_body(str(err)) from None
        spec.toxic = toxic
        spec.toxicity = toxicity
        proxy.update_toxic(spec)
        return spec

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        proxy = self.get(proxy_name)
        spec = self.get_toxic(proxy_name, toxic_name)
        proxy.remove_toxic(spec)
        log.info("proxy %s: - toxic %s", proxy_name, toxic_name)

    # -- metrics ---------------------------------------------------------------
    def metrics_text(self) -> str:
        lines = []
        for metric, index, what in (("received", 0, "read from the source"), ("sent", 1, "written to the destination")):
            full = f"toxiproxy_proxy_{metric}_bytes_total"
            lines.append(f"# HELP {full} Bytes {what}, per proxy and direction.")
            lines.append(f"# TYPE {full} counter")
            for proxy in self.proxies.values():
                for stream in STREAMS:
                    labels = _labels(direction=stream, listener=proxy.listen, proxy=proxy.name, upstream=proxy.upstream)
                    lines.append(f"{full}{{{labels}}} {proxy.counters[stream][index]}")
        lines.append("# HELP roomquake_proxy_connections Live proxied connections.")
        lines.append("# TYPE roomquake_proxy_connections gauge")
        for proxy in self.proxies.values():
            lines.append(f"roomquake_proxy_connections{{{_labels(proxy=proxy.name)}}} {len(proxy.connections)}")
        lines.append("# HELP roomquake_proxy_tasks asyncio tasks alive in the server.")
        lines.append("# TYPE roomquake_proxy_tasks gauge")
        lines.append(f"roomquake_proxy_tasks {len(asyncio.all_tasks())}")
        try:
            fds = len(os.listdir("/proc/self/fd"))
            lines.append("# HELP roomquake_proxy_open_fds Open file descriptors of the server process.")
            lines.append("# TYPE roomquake_proxy_open_fds gauge")
            lines.append(f"roomquake_proxy_open_fds {fds}")
        except OSError:
            pass
        return "\n".join(lines) + "\n"


def _toxicity(body: dict[str, Any], default: float) -> float:
    value = body.get("toxicity", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_body("field 'toxicity' must be a number")
    if not 0.0 <= value <= 1.0:
        raise bad_body("field 'toxicity' must be between 0 and 1")
    return float(value)


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())
