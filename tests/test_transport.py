"""The connections to the upstream over real sockets: the proxy's own keep-alive pool
(http1.py) when it dials the upstream itself; httpx's pools on asyncio streams, several
small ones in turn, through an egress proxy; and the failures a real socket gives,
mapped as httpx maps them."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from legacy_bridge.errors import UpstreamError, UpstreamTimeout
from legacy_bridge.http1 import Pool
from legacy_bridge.query import Document
from legacy_bridge.transport import AsyncioBackend, Shards, outbound_transport
from legacy_bridge.upstream import Policy, Upstream
from support import read_request, server

DOC = Document("query Q { ok }", "Q")
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n"
          b'{"data":{"ok":true}}')


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(ANSWER)
        await writer.drain()


async def answer_once_then_close(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(ANSWER)  # keep-alive as far as the client knows, then the server leaves
    await writer.drain()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(60)


async def query(url: str, ca: Path | None = None, **policy: Any) -> dict[str, Any]:
    upstream = Upstream(url, Policy(retries=0, **policy), ca_file=ca)
    try:
        return await upstream.query("/graphql", DOC, {}, "key")
    finally:
        await upstream.aclose()


@pytest.fixture
def egress_proxy(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Names `url` as the egress proxy for plain and TLS upstreams."""
    def use(url: str) -> None:
        for name in ("HTTP_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(name, url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
    return use


def test_the_upstream_dialled_directly_gets_the_proxys_own_pool() -> None:
    pool = outbound_transport("http://upstream.internal:8080", 100)
    assert isinstance(pool, Pool) and pool.origin == ("http", "upstream.internal", 8080)


def test_through_an_egress_proxy_the_connections_are_shared_out_over_small_pools(
        egress_proxy: Any) -> None:
    egress_proxy("http://egress.internal:3128")
    shards = outbound_transport("http://upstream.internal", 100)
    assert isinstance(shards, Shards) and len(shards.pools) == 16
    few = outbound_transport("http://upstream.internal", 4)
    assert isinstance(few, Shards) and len(few.pools) == 1


def test_a_loopback_upstream_never_goes_through_the_egress_proxy(egress_proxy: Any) -> None:
    egress_proxy("http://egress.internal:3128")
    assert isinstance(outbound_transport("http://127.0.0.1:9", 100), Pool)


async def test_through_an_egress_proxy_requests_take_the_pools_in_turn_on_asyncio_streams(
        monkeypatch: pytest.MonkeyPatch, egress_proxy: Any) -> None:
    opened: list[str] = []
    connect = AsyncioBackend.connect_tcp

    async def spy(self: AsyncioBackend, host: str, port: int, **kwargs: Any) -> Any:
        opened.append(host)
        return await connect(self, host, port, **kwargs)

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", spy)
    async with server(keep_answering) as (proxy, accepted):  # answers what it is sent
        egress_proxy(proxy)
        upstream = Upstream("http://upstream.internal", Policy(retries=0, concurrency=8))
        assert isinstance(upstream._transport, Shards)  # two pools of four
        try:
            for _ in range(4):
                assert await upstream.query("/graphql", DOC, {}, "key") == {"ok": True}
        finally:
            await upstream.aclose()
    assert opened == ["127.0.0.1", "127.0.0.1"] and len(accepted) == 2  # one per pool


async def test_an_idle_connection_the_upstream_closed_is_replaced_not_failed() -> None:
    async with server(answer_once_then_close) as (url, accepted):
        upstream = Upstream(url, Policy(retries=0))
        try:
            assert await upstream.query("/graphql", DOC, {}, "key") == {"ok": True}
            await asyncio.sleep(0.05)  # the close reaches the client's event loop
            assert await upstream.query("/graphql", DOC, {}, "key") == {"ok": True}
        finally:
            await upstream.aclose()
    assert len(accepted) == 2


async def test_an_upstream_that_never_answers_is_a_timeout() -> None:
    async with server(never_answer) as (url, _):
        with pytest.raises(UpstreamTimeout):
            await query(url, timeout=0.3)


async def test_nothing_listening_is_a_connection_failure() -> None:
    async with server(keep_answering) as (url, _):
        pass  # closed: the port is free again
    with pytest.raises(UpstreamError, match="connection failed"):
        await query(url)


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA of our own and a certificate it signed for 127.0.0.1, made with openssl."""
    folder = tmp_path_factory.mktemp("ca")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "1", "-subj", "/CN=legacy-bridge test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,IP:127.0.0.2\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "1", "-extfile", "san.cnf")
    return folder


def _server_tls(folder: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "server.pem", folder / "server.key")
    return context


async def test_tls_to_an_upstream_signed_by_the_ca_in_bridge_upstream_ca_file(
        private_ca: Path) -> None:
    async with server(keep_answering, ssl=_server_tls(private_ca)) as (url, _):
        assert await query(url, ca=private_ca / "ca.pem") == {"ok": True}


async def test_tls_to_an_upstream_no_trusted_ca_signed_fails(private_ca: Path) -> None:
    async with server(keep_answering, ssl=_server_tls(private_ca)) as (url, _):
        with pytest.raises(UpstreamError, match="connection failed"):
            await query(url)


async def test_tls_through_the_egress_proxys_tunnel(private_ca: Path, egress_proxy: Any) -> None:
    tunnels: list[str] = []

    async def connect_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ")[1].decode()  # CONNECT host:port
        tunnels.append(target)
        # 127.0.0.2 is this host too; the stand-in dials the server where it listens
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                             int(target.rsplit(":", 1)[1]))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async with server(keep_answering, ssl=_server_tls(private_ca)) as (url, _), \
            server(connect_proxy) as (proxy, _):
        egress_proxy(proxy)
        # not a loopback name the proxy is skipped for, and named in the certificate
        assert await query(url.replace("127.0.0.1", "127.0.0.2"),
                           ca=private_ca / "ca.pem") == {"ok": True}
    assert tunnels == [url.replace("https://127.0.0.1", "127.0.0.2")]
