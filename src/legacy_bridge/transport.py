"""The connections to the upstream: the proxy's own pool, or httpx's through an egress proxy.

When the proxy dials the upstream itself, `outbound_transport` gives its own
keep-alive HTTP/1.1 pool (http1.py). Through an egress proxy (`HTTPS_PROXY`,
`HTTP_PROXY`, `ALL_PROXY`) it gives httpx's pools, which speak the proxy's
CONNECT and absolute-form requests, made cheaper per request in three ways, each
measured (README, Benchmarks):

- httpcore's pool walks every connection it holds for every request it assigns
  and every answer it releases (is it idle, has it expired, is its socket
  readable), so one pool of many connections costs each request in proportion to
  the concurrency. `Shards` takes several small pools in turn.
- httpcore's anyio streams go through anyio's typed-attribute and cancel-scope
  machinery for each read and write, and ask the kernel (a poll) whether an idle
  socket is readable. `AsyncioBackend` is httpcore's network-backend interface on
  plain asyncio streams: the event loop already knows when a peer closed.
- httpcore asks sniffio which event loop runs for every lock, event and shielded
  close (several per request), and sniffio answers by importing and asking asyncio
  each time. `asyncio_declared` says it once for the serving thread, through
  sniffio's own declaration (`thread_local.name`).

Either way the semantics are httpx's: same exceptions, timeouts and TLS trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import typing
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpcore
import httpx
import sniffio

from legacy_bridge.errors import ConfigError
from legacy_bridge.http1 import Pool

_WRITE_BUFFER = 64 * 1024  # past this much unsent, wait for the socket (a request is less)
SHARDS = 16  # pools at most; each holds a share of BRIDGE_UPSTREAM_CONCURRENCY


@contextlib.contextmanager
def _mapped(errors: dict[type[BaseException], type[Exception]]) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for kind, to in errors.items():
            if isinstance(exc, kind):
                raise to(exc) from exc
        raise


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with _mapped({TimeoutError: httpcore.ReadTimeout, OSError: httpcore.ReadError}):
            if timeout is None:
                return await self._reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with _mapped({TimeoutError: httpcore.WriteTimeout, OSError: httpcore.WriteError}):
            if self._writer.transport.is_closing():
                raise httpcore.WriteError("the connection is closed")
            self._writer.write(buffer)
            if self._writer.transport.get_write_buffer_size() > _WRITE_BUFFER:
                async with asyncio.timeout(timeout):
                    await self._writer.drain()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._writer.wait_closed()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        with _mapped({TimeoutError: httpcore.ConnectTimeout, OSError: httpcore.ConnectError}):
            try:
                async with asyncio.timeout(timeout):
                    await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
            except BaseException:
                await self.aclose()
                raise
        return self

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # An idle keep-alive connection is readable only when the peer closed it or
            # sent something unasked; the event loop has already seen either.
            return self._reader.at_eof() or self._writer.transport.is_closing()
        names = {"ssl_object": "ssl_object", "client_addr": "sockname",
                 "server_addr": "peername", "socket": "socket"}
        return self._writer.get_extra_info(names[info]) if info in names else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend on asyncio streams (uvloop's, under uvicorn)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        with _mapped({TimeoutError: httpcore.ConnectTimeout, OSError: httpcore.ConnectError}):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        raw: socket.socket = writer.get_extra_info("socket")
        for option in socket_options or ():
            raw.setsockopt(*option)
        return _Stream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        with _mapped({TimeoutError: httpcore.ConnectTimeout, OSError: httpcore.ConnectError}):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@contextlib.contextmanager
def asyncio_declared() -> Iterator[None]:
    """While the app serves, this thread's async library is asyncio, for sniffio."""
    before = sniffio.thread_local.name
    sniffio.thread_local.name = "asyncio"
    try:
        yield
    finally:
        sniffio.thread_local.name = before


class Shards(httpx.AsyncBaseTransport):
    """Several small connection pools to one upstream, taken in turn."""

    def __init__(self, pools: list[httpx.AsyncHTTPTransport]) -> None:
        self.pools = pools
        self._next = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._next = (self._next + 1) % len(self.pools)
        return await self.pools[self._next].handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


def outbound_transport(base_url: str, connections: int,
                       ca_file: Path | None = None) -> httpx.AsyncBaseTransport:
    """The connections to the upstream: through the egress proxy the environment
    names for its scheme (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`), unless `NO_PROXY`
    covers its host or it is on loopback, else straight to it; trusting `ca_file`
    (BRIDGE_UPSTREAM_CA_FILE) when given. At most `connections` are kept open (the
    caller's concurrency bound, BRIDGE_UPSTREAM_CONCURRENCY, caps those in use)."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    proxy = None
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")  # a sidecar's upstream
    if parts.hostname and not loopback and not urllib.request.proxy_bypass(parts.hostname):
        proxy = proxies.get(parts.scheme) or proxies.get("all")
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"BRIDGE_UPSTREAM_CA_FILE {ca_file}: {exc}") from None
    if proxy is None:
        return Pool(base_url, connections, verify)
    shards = max(1, min(SHARDS, connections // 4))
    each = -(-connections // shards)
    pools = []
    for _ in range(shards):
        pool = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=each, max_keepalive_connections=each),
            proxy=proxy, verify=verify)
        # httpx takes no network backend; its pool (or proxy pool) is httpcore's, which
        # makes every connection with the backend it holds (versions pinned in the lock)
        pool._pool._network_backend = AsyncioBackend()
        pools.append(pool)
    return Shards(pools)
