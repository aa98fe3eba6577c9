"""The pools to the upstream: asyncio streams under httpcore, several small pools in
turn, and the failures a real socket gives mapped as httpx maps them."""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from legacy_bridge.errors import UpstreamError, UpstreamTimeout
from legacy_bridge.query import Document
from legacy_bridge.transport import AsyncioBackend, Shards, outbound_transport
from legacy_bridge.upstream import Policy, Upstream

DOC = Document("query Q { ok }", "Q")
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n"
          b'{"data":{"ok":true}}')
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    found = re.search(rb"content-length: (\d+)", head, re.I)
    await reader.readexactly(int(found.group(1)) if found else 0)


@asynccontextmanager
async def server(handle: Handler, **options: Any) -> AsyncIterator[tuple[str, list[int]]]:
    """A raw HTTP/1.1 server on loopback in this event loop; yields (url, connections)."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(on_connect, "127.0.0.1", 0, **options)
    port = listening.sockets[0].getsockname()[1]
    scheme = "https" if options.get("ssl") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}", accepted
    finally:
        listening.close()


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


def test_the_connections_are_shared_out_over_small_pools() -> None:
    shards = outbound_transport("http://127.0.0.1:9", 100)
    assert isinstance(shards, Shards) and len(shards.pools) == 16
    assert outbound_transport("http://127.0.0.1:9", 4).pools.__len__() == 1


async def test_requests_take_the_pools_in_turn_each_on_asyncio_streams(
        monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    connect = AsyncioBackend.connect_tcp

    async def spy(self: AsyncioBackend, host: str, port: int, **kwargs: Any) -> Any:
        opened.append(host)
        return await connect(self, host, port, **kwargs)

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", spy)
    async with server(keep_answering) as (url, accepted):
        upstream = Upstream(url, Policy(retries=0, concurrency=8))  # two pools of four
        try:
            for _ in range(4):
                assert await upstream.query("/graphql", DOC, {}, "key") == {"ok": True}
        finally:
            await upstream.aclose()
    assert len(opened) == len(accepted) == 2  # one kept-alive connection per pool


async def test_an_idle_connection_the_upstream_closed_is_replaced_not_failed() -> None:
    async with server(answer_once_then_close) as (url, accepted):
        upstream = Upstream(url, Policy(retries=0))
        try:
            assert await upstream.query("/graphql", DOC, {}, "key") == {"ok": True}
            await asyncio.sleep(0.05)  # the close reaches the client's event loop
            for _ in range(len(upstream._transport.pools)):  # back to the first pool
                assert await upstream.query("/graphql", DOC, {}, "key") == {"ok": True}
        finally:
            await upstream.aclose()
    assert len(accepted) == 1 + 16


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


async def test_tls_through_the_egress_proxys_tunnel(private_ca: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
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
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        # not a loopback name the proxy is skipped for, and named in the certificate
        assert await query(url.replace("127.0.0.1", "127.0.0.2"),
                           ca=private_ca / "ca.pem") == {"ok": True}
    assert tunnels == [url.replace("https://127.0.0.1", "127.0.0.2")]
