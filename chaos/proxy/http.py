"""The API's HTTP/1.1 server, behaving as Go's net/http does for Toxiproxy.

h11 parses and frames; this module adds what a client of Toxiproxy can see
of Go's server: an HTTP/1.1 ``400 Bad Request`` (``: missing required Host
header``, ...) written raw before closing on a malformed request, 431 for
oversized headers, keep-alive and pipelining, ``100 Continue``, the
``Date`` header, no body for HEAD, and its timeouts (15 s to read a
request, 60 s idle, 25 s per handler, then 503 with an empty body, as
Toxiproxy's ``http.TimeoutHandler``).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

import h11

log = logging.getLogger("chaos.proxy")

READ_TIMEOUT = 15.0
IDLE_TIMEOUT = 60.0
HANDLER_TIMEOUT = 25.0
MAX_HEADER_BYTES = 1 << 20  # Go's DefaultMaxHeaderBytes
MAX_BODY = 64 << 20  # Go has none; a body this large is no API call (413, then closed)


@dataclass
class Request:
    method: str
    target: str  # as sent: "/proxies/a%2Fb?x=1"
    path: str  # decoded, as Go's URL.Path: "/proxies/a/b"
    query: str
    headers: dict[str, str]  # lower-cased names; the last value of a repeated header
    body: bytes
    http_version: str

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


App = Callable[[Request], Awaitable[Response]]

_ERROR_HEADERS = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"


def _raw_error(status: str) -> bytes:
    """Go's server answer to a request it could not parse (conn.serve)."""
    return f"HTTP/1.1 {status}{_ERROR_HEADERS}{status}".encode()


def _go_reason(err: h11.RemoteProtocolError) -> str:
    if err.error_status_hint == 431:
        return "431 Request Header Fields Too Large"
    text = str(err).lower()
    if "host" in text and "missing" in text:
        return "400 Bad Request: missing required Host header"
    if "host" in text and ("multiple" in text or "more than one" in text):
        return "400 Bad Request: too many Host headers"
    return "400 Bad Request"


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class _HttpConnection(asyncio.Protocol):
    def __init__(self, app: App) -> None:
        self.app = app
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.transport: asyncio.Transport | None = None
        self.more = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.paused_writing = False
        self.drained = asyncio.Event()
        self.drained.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        try:
            self.h11.receive_data(data)
        except RuntimeError:  # the peer sent more after a request we will close on
            return
        self.more.set()

    def eof_received(self) -> bool:
        try:
            self.h11.receive_data(b"")
        except RuntimeError:
            pass
        self.more.set()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.drained.clear()

    def resume_writing(self) -> None:
        self.drained.set()

    # -- the request loop --------------------------------------------------------
    async def _next(self, timeout: float) -> h11.Event | type[h11.PAUSED]:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            if self.h11.client_is_waiting_for_100_continue:
                self._send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))
            self.more.clear()
            await asyncio.wait_for(self.more.wait(), timeout)

    async def _serve(self) -> None:
        transport = self.transport
        assert transport is not None
        try:
            while True:
                fresh = self.h11.their_state is h11.IDLE
                event = await self._next(IDLE_TIMEOUT if fresh else READ_TIMEOUT)
                if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    break
                if not isinstance(event, h11.Request):
                    break
                request = await self._read(event)
                if request is None:
                    transport.write(_raw_error("413 Request Entity Too Large"))
                    break
                response = await self._handle(request)
                self._respond(request, response)
                await self.drained.wait()
                if self.h11.our_state is h11.MUST_CLOSE:
                    break
                self.h11.start_next_cycle()
        except h11.RemoteProtocolError as err:
            if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                transport.write(_raw_error(_go_reason(err)))
        except (asyncio.TimeoutError, h11.LocalProtocolError, ConnectionError):
            pass
        except asyncio.CancelledError:
            return
        if not transport.is_closing():
            transport.close()

    async def _read(self, head: h11.Request) -> Request | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next(READ_TIMEOUT)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise h11.RemoteProtocolError("incomplete body", error_status_hint=400)
        target = head.target.decode("latin-1")
        if "://" in target.split("?", 1)[0]:  # absolute form
            parts = urlsplit(target)
            raw_path, query = parts.path, parts.query
        else:  # origin form: "//x" is a path here, as for Go's server
            raw_path, _, query = target.partition("?")
        headers: dict[str, str] = {}
        for name, value in head.headers:
            headers[name.decode("latin-1")] = value.decode("latin-1")
        return Request(head.method.decode("ascii").upper(), target, unquote(raw_path) or "/", query,
                       headers, b"".join(chunks), head.http_version.decode("ascii"))

    async def _handle(self, request: Request) -> Response:
        task = asyncio.ensure_future(self.app(request))
        try:
            return await asyncio.wait_for(asyncio.shield(task), HANDLER_TIMEOUT)
        except asyncio.TimeoutError:  # the handler goes on, as in Go; its answer is not sent
            return Response(503)
        except Exception:  # noqa: BLE001 - a handler bug must not take the connection's loop down
            log.exception("API handler failed for %s %s", request.method, request.target)
            return Response(500, [("Content-Type", "text/plain; charset=utf-8")], b"Internal Server Error\n")

    def _respond(self, request: Request, response: Response) -> None:
        headers = [*response.headers, ("Date", email.utils.formatdate(usegmt=True)),
                   ("Content-Length", str(len(response.body)))]
        if response.status in (204, 304) or 100 <= response.status < 200:
            headers = [h for h in headers if h[0] != "Content-Length"]
        self._send(h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status)))
        if response.body and request.method != "HEAD" and response.status not in (204, 304):
            self._send(h11.Data(data=response.body))
        self._send(h11.EndOfMessage())

    def _send(self, event: h11.Event) -> None:
        data = self.h11.send(event)
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class HttpServer:
    """The API's listener; ``app`` answers each request."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _HttpConnection(self.app), host or None, port,
                                                reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
