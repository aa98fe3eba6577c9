"""The proxy's own HTTP/1.1 connections to its upstream, as an httpx transport.

Profiled under many distinct requests at once (README, Benchmarks), httpx's own
pool (httpcore, h11, and the anyio locks and shielded closes around every
request) was the largest part of a translated request's CPU. The proxy needs
little of what that pool offers: one request at a time per connection,
keep-alive, plain or TLS, POSTs of a few kilobytes. `Pool` is that and no more,
with answers parsed by httptools (llhttp, the parser uvicorn serves with). An
egress proxy still takes httpx's own pools (transport.py).

It is an `httpx.AsyncBaseTransport`: requests and responses are httpx's, errors
are httpx's exceptions, and an answer's body streams from the socket, so the
caller's size cap applies before an answer is buffered.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import typing
from collections import deque
from collections.abc import AsyncIterator

import httptools
import httpx

_READ_LIMIT = 1 << 20  # unread answer bytes past which the socket stops being read


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("the upstream did not answer in time"))


class _Connection(asyncio.Protocol):
    """One connection to the upstream, one request at a time: the asyncio protocol
    and httptools' callbacks in one object, so the parser calls straight in."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._paused = False
        self._reset()

    def _reset(self) -> None:
        if self._paused and self.transport is not None:  # the answer ended past the limit
            self.transport.resume_reading()
        self.busy = False  # a request is out and its answer not yet all read
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.done = False
        self._interim = False
        self._keep_alive = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._error: httpx.TransportError | None = None

    # -- asyncio's side ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's: no subclass

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.done:
            self._fail(httpx.RemoteProtocolError("the upstream sent bytes nobody asked for"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"the upstream's answer is malformed: {exc}"))

    def eof_received(self) -> bool:
        return False  # half-closed is closed: the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.head_done and not self.done and not self._framed():
            self.done = True  # an answer that runs until the connection closes
        elif self.busy and not self.done and self._error is None:
            self._error = httpx.RemoteProtocolError(
                "the upstream closed the connection before its answer was complete")
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _framed(self) -> bool:
        """Whether the answer's end is given by a length or chunks, not the peer's close."""
        return any(name.lower() in (b"content-length", b"transfer-encoding")
                   for name, _ in self.headers)

    def pause_writing(self) -> None:  # past the transport's high-water mark (64 KiB)
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools' side -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.done:  # a second answer to one request
            self._fail(httpx.RemoteProtocolError("the upstream sent bytes nobody asked for"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue and the like: the real answer follows
            self._interim = True
            self.headers = []
            return
        self.status = status
        self.head_done = True
        self._keep_alive = self._parser.should_keep_alive()  # not known past the end
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _READ_LIMIT and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.done = True
        self._wake()

    # -- the request's side ----------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: httpx.TransportError) -> None:
        if self._error is None:
            self._error = error
        if self.transport is not None:
            self.transport.close()
        self._wake()

    async def _wait(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def send(self, message: bytes, timeout: float | None) -> None:
        assert self.transport is not None
        if self.closed:  # not reachable between taking and sending; kept so it stays so
            raise httpx.RemoteProtocolError("the connection closed before the request")
        self.busy = True
        self.transport.write(message)
        if self._writable is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self._writable
            except TimeoutError:
                raise httpx.WriteTimeout("the upstream did not take the request in time") \
                    from None

    async def read_head(self, timeout: float | None) -> None:
        while not self.head_done:
            if self._error is not None:
                raise self._error
            await self._wait(timeout)

    async def read_body(self, timeout: float | None) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered < _READ_LIMIT // 2:
                    self._paused = False
                    assert self.transport is not None
                    self.transport.resume_reading()
                yield chunk
            elif self.done:
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait(timeout)

    def reusable(self) -> bool:
        return self.done and self._keep_alive and not self.closed and self._error is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Body(httpx.AsyncByteStream):
    """An answer's body, read from its connection; closing it hands the connection
    back to the pool when the answer was read to its end, else closes it."""

    def __init__(self, pool: Pool, connection: _Connection, timeout: float | None) -> None:
        self._pool, self._connection, self._timeout = pool, connection, timeout
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._connection.read_body(self._timeout):
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:  # once: a second release would close the connection kept
            self._closed = True
            self._pool.release(self._connection)


class Pool(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections to one origin (http or https). It keeps no
    queue of its own: the caller bounds the requests in flight (BRIDGE_UPSTREAM_CONCURRENCY)."""

    def __init__(self, base_url: str, keepalive: int, verify: ssl.SSLContext | bool = True,
                 keepalive_expiry: float = 5.0) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {base_url}")
        self.origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        self._ssl: ssl.SSLContext | None = None
        if url.scheme == "https":
            self._ssl = httpx.create_ssl_context(verify=verify)
            self._ssl.set_alpn_protocols(["http/1.1"])
        self._keepalive = keepalive
        self._expiry = keepalive_expiry  # an idle connection older than this is not reused
        self._idle: list[_Connection] = []  # most recently used last: it is taken first
        self._open: set[_Connection] = set()
        self.connections_made = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if (url.scheme, url.host, url.port or self.origin[2]) != self.origin:
            raise httpx.UnsupportedProtocol(f"this pool serves {self.origin}, not {url}")
        timeouts = request.extensions.get("timeout", {})
        message = _message(request, await request.aread())
        connection = self._take()
        if connection is None:
            connection = await self._connect(timeouts.get("connect"))
        try:
            await connection.send(message, timeouts.get("write"))
            await connection.read_head(timeouts.get("read"))
        except BaseException:
            self.release(connection)
            raise
        return httpx.Response(connection.status, headers=connection.headers,
                              stream=_Body(self, connection, timeouts.get("read")),
                              extensions={"http_version": b"HTTP/1.1"})

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self._expiry:
                return connection
            self._forget(connection)
        return None

    async def _connect(self, timeout: float | None) -> _Connection:
        _, host, port = self.origin
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    _Connection, host, port, ssl=self._ssl,
                    server_hostname=host if self._ssl is not None else None)
        except TimeoutError:
            raise httpx.ConnectTimeout("the upstream did not accept a connection in time") \
                from None
        except OSError as exc:  # refused, unreachable, a certificate not trusted
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        self._open.add(connection)
        self.connections_made += 1
        return connection

    def release(self, connection: _Connection) -> None:
        if connection.reusable() and len(self._idle) < self._keepalive:
            connection._reset()
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def aclose(self) -> None:
        for connection in list(self._open):
            self._forget(connection)
        self._idle.clear()


def _message(request: httpx.Request, body: bytes) -> bytes:
    """The request's bytes on the wire. httpx has set Host and Content-Length."""
    raw = request.headers.raw
    lines = [request.method.encode(), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in raw:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    head = b"".join(lines)
    # a line break or NUL of its own in any header would smuggle a request into this one
    breaks = len(raw) + 2
    if head.count(b"\n") != breaks or head.count(b"\r") != breaks or b"\0" in head:
        raise httpx.LocalProtocolError("a header holds a line break or a NUL")
    return head + body
