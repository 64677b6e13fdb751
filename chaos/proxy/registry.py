"""The proxies of one server and every operation the HTTP API offers, with
Toxiproxy 2.12's semantics, statuses and messages (its ``api.go``,
``proxy_collection.go`` and ``toxic_collection.go``): decode errors are 400
with Go's words, a listener that cannot open is 500, ``/populate`` applies
entries in order and stops at the first that fails.

Values Toxiproxy accepts are accepted; those that are surely a mistake
(a negative latency, a slicer that cannot slice) are logged as warnings.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from chaos.proxy import gojson
from chaos.proxy.gojson import Field, Struct
from chaos.proxy.poller import Poller
from chaos.proxy.proxy import ListenError, Proxy
from chaos.proxy.timer import PreciseTimer
from chaos.proxy.toxics import REGISTRY
from chaos.proxy.toxics.base import DIRECTIONS, Direction, Toxic, ToxicSpec

log = logging.getLogger("chaos.proxy")

VERSION = "2.12.0"  # the Toxiproxy API version this server speaks


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_body(detail: str) -> ApiError:
    return ApiError(400, f"bad request body: {detail}")


def missing(field: str) -> ApiError:
    return ApiError(400, f"missing required field: {field}")


PROXY_NOT_FOUND = (404, "proxy not found")
TOXIC_NOT_FOUND = (404, "toxic not found")

# The Go types bodies are decoded into (their names appear in decode errors).
_LOGGER = Field("Logger", Struct("Logger", "zerolog.Logger", open=True), nullable=True)
PROXY = Struct("Proxy", "toxiproxy.Proxy", (
    Field("name", "string"), Field("listen", "string"), Field("upstream", "string"), Field("enabled", "bool"),
    _LOGGER))
POPULATE_ITEM = Struct("", 'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }', (
    Field("name", "string"), Field("listen", "string"), Field("upstream", "string"), _LOGGER,
    Field("enabled", "*bool", nullable=True)))
TOXIC_WRAPPER = Struct("ToxicWrapper", "toxics.ToxicWrapper", (
    Field("attributes", Struct("NoopToxic", "toxics.NoopToxic", open=True), nullable=True),
    Field("name", "string"), Field("type", "string"), Field("stream", "string"), Field("toxicity", "float32")))


def _toxic_struct(cls: type[Toxic]) -> Struct:
    return Struct(cls.go_type, f"toxics.{cls.go_type}", tuple(Field(k, t) for k, t in cls.fields.items()))


def _attributes_of(cls: type[Toxic], with_toxicity: bool) -> Struct:
    fields = [Field("attributes", _toxic_struct(cls), nullable=True)]
    text = 'struct { Attributes interface {} "json:\\"attributes\\"" }'
    if with_toxicity:
        fields.append(Field("toxicity", "float32"))
        text = 'struct { Attributes interface {} "json:\\"attributes\\""; Toxicity float32 "json:\\"toxicity\\"" }'
    return Struct("", text, tuple(fields))


def _decode(body: bytes) -> Any:
    try:
        return gojson.decode(body)
    except gojson.GoJSONError as err:
        raise bad_body(str(err)) from None


class Registry:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.proxies: dict[str, Proxy] = {}
        self.lock = asyncio.Lock()  # one mutation at a time: binds await
        self._timer: PreciseTimer | None = None
        self._poller: Poller | None = None

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

    def _new(self, name: str, listen: str, upstream: str) -> Proxy:
        return Proxy(name, listen, upstream, seed=self.seed, timer=self.timer, poller=self.poller)

    @staticmethod
    async def _start(proxy: Proxy) -> None:
        try:
            await proxy.start()
        except ListenError as err:
            raise ApiError(500, str(err)) from None
        except OSError as err:
            raise ApiError(500, err.strerror or str(err)) from None

    # -- proxies -----------------------------------------------------------
    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(*PROXY_NOT_FOUND)
        return proxy

    async def create(self, body: bytes) -> Proxy:
        fields, error = gojson.into_struct(_decode(body), PROXY)
        if error:
            raise bad_body(error)
        name, upstream = fields.get("name", ""), fields.get("upstream", "")
        if not name:
            raise missing("name")
        if not upstream:
            raise missing("upstream")
        async with self.lock:
            if name in self.proxies:
                raise ApiError(409, "proxy already exists")
            proxy = self._new(name, fields.get("listen", ""), upstream)
            if fields.get("enabled", True):
                await self._start(proxy)
            self.proxies[name] = proxy
        log.info("proxy %s: %s -> %s%s", name, proxy.listen, upstream, "" if proxy.enabled else " (disabled)")
        return proxy

    async def populate(self, body: bytes) -> tuple[list[Proxy], ApiError | None]:
        """Toxiproxy's PopulateJson: every entry checked for its name and
        upstream first; then entries are applied in order (a proxy whose
        listen and upstream did not change is kept, any other is replaced)
        until one fails to listen. Returns what was applied and that error."""
        items, error = gojson.into_struct_list(_decode(body), POPULATE_ITEM)
        if error:
            raise bad_body(error)
        for i, item in enumerate(items, start=1):
            if not item.get("name"):
                raise missing(f"name at proxy {i}")
            if not item.get("upstream"):
                raise missing(f"upstream at proxy {i}")
        done: list[Proxy] = []
        async with self.lock:
            for item in items:
                name, listen, upstream = item["name"], item.get("listen", ""), item["upstream"]
                enabled = item.get("enabled")
                proxy = self._new(name, listen, upstream)
                existing = self.proxies.get(name)
                if existing is not None:
                    if existing.listen == listen and existing.upstream == upstream:
                        done.append(proxy)  # kept; Toxiproxy 2.12 answers with the new, unstarted entry
                        continue
                    await existing.stop()
                if enabled is None or enabled:
                    try:
                        await self._start(proxy)
                    except ApiError as err:
                        return done, err
                self.proxies[name] = proxy
                done.append(proxy)
        return done, None

    async def update(self, name: str, body: bytes) -> Proxy:
        proxy = self.get(name)
        fields, error = gojson.into_struct(_decode(body), PROXY)
        if error:
            raise bad_body(error)
        listen = fields.get("listen", proxy.listen)
        upstream = fields.get("upstream", proxy.upstream)
        enabled = fields.get("enabled", proxy.enabled)
        async with self.lock:
            if listen != proxy.listen or upstream != proxy.upstream:
                await proxy.stop()
                proxy.listen, proxy.upstream = listen, upstream
            if enabled != proxy.enabled:
                if enabled:
                    await self._start(proxy)
                else:
                    await proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        async with self.lock:
            proxy = self.get(name)
            await proxy.stop()
            del self.proxies[name]

    async def reset(self) -> None:
        async with self.lock:
            for proxy in list(self.proxies.values()):
                if not proxy.enabled:
                    await self._start(proxy)  # a failure answers 500; later proxies stay as they are
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
            raise ApiError(*TOXIC_NOT_FOUND)
        return spec

    def add_toxic(self, proxy_name: str, body: bytes) -> ToxicSpec:
        proxy = self.get(proxy_name)
        return self.add_toxic_value(proxy, _decode(body))

    def add_toxic_value(self, proxy: Proxy, value: Any) -> ToxicSpec:
        """Toxiproxy's AddToxicJson on a decoded body (also used for config files)."""
        fields, error = gojson.into_struct(value, TOXIC_WRAPPER)
        if error:
            raise bad_body(error)
        stream = fields.get("stream", "downstream")
        direction = Direction.parse(stream)
        if direction is None:
            raise ApiError(400, "stream was invalid, can be either upstream or downstream")
        type_ = fields.get("type", "")
        name = fields.get("name") or f"{type_}_{stream}"
        cls = REGISTRY.get(type_)
        if cls is None:
            raise ApiError(400, "invalid toxic type")
        if proxy.find_toxic(name) is not None:
            raise ApiError(409, "toxic already exists")
        decoded, error = gojson.into_struct(value, _attributes_of(cls, with_toxicity=False))
        if error:
            raise bad_body(error)
        toxic = cls(**(decoded.get("attributes") or {}))
        spec = ToxicSpec(name, type_, stream, direction, fields.get("toxicity", 1.0), toxic)
        proxy.add_toxic(spec)
        log.info("proxy %s: + toxic %s (%s %s, toxicity %g) %s", proxy.name, name, type_, stream, spec.toxicity,
                 toxic.as_json())
        _warn_mistakes(proxy.name, spec)
        return spec

    def update_toxic(self, proxy_name: str, toxic_name: str, body: bytes) -> ToxicSpec:
        proxy = self.get(proxy_name)
        spec = proxy.find_toxic(toxic_name)
        if spec is None:
            raise ApiError(*TOXIC_NOT_FOUND)
        decoded, error = gojson.into_struct(_decode(body), _attributes_of(type(spec.toxic), with_toxicity=True))
        # Go decodes into the live toxic: attributes that decoded are set even when another failed
        for key, value in (decoded.get("attributes") or {}).items():
            setattr(spec.toxic, key, value)
        if error:
            raise bad_body(error)
        spec.toxicity = decoded.get("toxicity", spec.toxicity)
        proxy.update_toxic(spec)
        _warn_mistakes(proxy_name, spec)
        return spec

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        proxy = self.get(proxy_name)
        spec = proxy.find_toxic(toxic_name)
        if spec is None:
            raise ApiError(*TOXIC_NOT_FOUND)
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
                for direction in DIRECTIONS:
                    labels = _labels(direction=direction.value, listener=proxy.listen, proxy=proxy.name,
                                     upstream=proxy.upstream)
                    lines.append(f"{full}{{{labels}}} {proxy.counters[direction][index]}")
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


def _warn_mistakes(proxy: str, spec: ToxicSpec) -> None:
    found = spec.toxic.mistakes()
    if spec.toxicity < 0 or spec.toxicity > 1:
        found.append(f"toxicity {spec.toxicity:g} is outside [0, 1] ({'never' if spec.toxicity <= 0 else 'always'}"
                     " applies)")
    for mistake in found:
        log.warning("proxy %s, toxic %s (%s): %s", proxy, spec.name, spec.type, mistake)


def _labels(**labels: str) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return ",".join(f'{k}="{esc(v)}"' for k, v in labels.items())
