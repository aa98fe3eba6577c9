"""The proxy's own HTTP/1.1 pool, against a raw server on a real socket: what it sends,
how it frames and streams answers, when it keeps a connection and when it drops one,
and the httpx exception each failure is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvloop

from legacy_bridge import http1
from legacy_bridge.http1 import Pool
from support import Handler, read_request, server

BODY = b'{"data":{"ok":true}}'
OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n" + BODY
TIMEOUTS = {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0}


def answering(*answers: bytes, then_close: bool = False) -> Handler:
    """A server that reads a request and sends the next answer, in turn, forever (or
    closes after the last)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        i = 0
        while True:
            await read_request(reader)
            writer.write(answers[i % len(answers)])
            await writer.drain()
            i += 1
            if then_close and i == len(answers):
                return
    return handle


@asynccontextmanager
async def pool_for(handle: Handler, keepalive: int = 4,
                   **options: float) -> AsyncIterator[tuple[Pool, str, list[int]]]:
    async with server(handle) as (url, accepted):
        pool = Pool(url, keepalive, **options)
        try:
            yield pool, url, accepted
        finally:
            await pool.aclose()


def request_to(url: str, read_timeout: float = TIMEOUTS["read"]) -> httpx.Request:
    return httpx.Request("POST", url, content=b"{}",
                         extensions={"timeout": {**TIMEOUTS, "read": read_timeout}})


async def post(pool: Pool, url: str, body: bytes = b"{}", **headers: str) -> httpx.Response:
    request = httpx.Request("POST", url + "/graphql?x=1", content=body, headers=headers,
                            extensions={"timeout": TIMEOUTS})
    response = await pool.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


async def test_the_request_goes_out_as_httpx_prepared_it() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async with pool_for(record) as (pool, url, _):
        await post(pool, url, b'{"q":1}', Authorization="Token k")
    host = url.removeprefix("http://").encode()
    assert seen == [b"POST /graphql?x=1 HTTP/1.1\r\nHost: " + host + b"\r\n"
                    b"Authorization: Token k\r\nContent-Length: 7\r\n\r\n{\"q\":1}"]


async def test_sequential_requests_share_one_kept_alive_connection() -> None:
    async with pool_for(answering(OK)) as (pool, url, accepted):
        for _ in range(5):
            response = await post(pool, url)
            assert (response.status_code, response.content) == (200, BODY)
    assert len(accepted) == 1 and pool.connections_made == 1


async def test_a_chunked_answer_is_joined() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
               b"7\r\n{\"data\"\r\nd\r\n:{\"ok\":true}}\r\n0\r\n\r\n")
    async with pool_for(answering(chunked)) as (pool, url, accepted):
        assert (await post(pool, url)).content == BODY
        assert (await post(pool, url)).content == BODY
    assert len(accepted) == 1


async def test_an_answer_without_a_length_runs_until_the_upstream_closes() -> None:
    unframed = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + BODY
    async with pool_for(answering(unframed, then_close=True)) as (pool, url, accepted):
        assert (await post(pool, url)).content == BODY
        assert (await post(pool, url)).content == BODY
    assert len(accepted) == 2  # that connection could not be used again


async def test_connection_close_is_not_kept() -> None:
    closing = OK.replace(b"content-length", b"connection: close\r\ncontent-length")
    async with pool_for(answering(closing)) as (pool, url, accepted):
        await post(pool, url)
        await post(pool, url)
    assert len(accepted) == 2


async def test_an_interim_100_continue_is_skipped() -> None:
    async with pool_for(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)) as (pool, url, _):
        response = await post(pool, url)
    assert (response.status_code, response.content) == (200, BODY)


async def test_the_status_and_headers_are_the_upstreams() -> None:
    limited = b"HTTP/1.1 429 Too Many\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n"
    async with pool_for(answering(limited)) as (pool, url, accepted):
        response = await post(pool, url)
        await post(pool, url)
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert len(accepted) == 1  # an empty body is a complete one


async def test_a_large_answer_streams_through_a_paused_socket() -> None:
    big = b"x" * (5 * 1024 * 1024)
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big)
    async with pool_for(answering(head + big)) as (pool, url, accepted):
        response = await pool.handle_async_request(request_to(url))
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            await asyncio.sleep(0)  # a slow reader: the unread part stays bounded
        await response.aclose()
        assert received == len(big)
        assert (await post(pool, url)).content == big
    assert len(accepted) == 1


async def test_an_answer_closed_before_its_end_takes_its_connection_with_it() -> None:
    big = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"x" * 1_000_000
    async with pool_for(answering(big)) as (pool, url, accepted):
        response = await pool.handle_async_request(request_to(url))
        await response.aclose()  # the caller's size cap gave up on it
        assert (await post(pool, url)).status_code == 200
    assert len(accepted) == 2


async def test_a_complete_answer_left_unread_past_the_read_limit_leaves_the_socket_readable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "_READ_LIMIT", 10)  # the whole answer arrives in one read
    async with pool_for(answering(OK)) as (pool, url, accepted):
        response = await pool.handle_async_request(request_to(url))
        connection = next(iter(pool._open))
        while not connection.done:
            await asyncio.sleep(0.01)
        await response.aclose()  # complete, though not read: kept
        assert (await post(pool, url)).content == BODY
    assert len(accepted) == 1


async def test_closing_an_answer_twice_keeps_its_connection_once() -> None:
    async with pool_for(answering(OK)) as (pool, url, _):
        response = await pool.handle_async_request(request_to(url))
        await response.aread()
        await response.stream.aclose()
        await response.stream.aclose()
        assert len(pool._idle) == 1 and not pool._idle[0].closed


async def test_an_idle_connection_past_its_expiry_is_not_reused() -> None:
    async with pool_for(answering(OK), keepalive_expiry=0.05) as (pool, url, accepted):
        await post(pool, url)
        await asyncio.sleep(0.1)
        await post(pool, url)
    assert len(accepted) == 2


async def test_no_more_idle_connections_are_kept_than_allowed() -> None:
    async with pool_for(answering(OK), keepalive=2) as (pool, url, accepted):
        await asyncio.gather(*(post(pool, url) for _ in range(5)))
        assert len(pool._idle) == 2
        await asyncio.gather(*(post(pool, url) for _ in range(2)))
    assert len(accepted) == 5


async def test_bytes_the_upstream_sends_unasked_retire_the_connection() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK + b"HTTP/1.1 200 OK\r\n")  # more than was asked for
        await writer.drain()
        await answering(OK)(reader, writer)

    async with pool_for(chatty) as (pool, url, accepted):
        await post(pool, url)
        await asyncio.sleep(0.05)
        assert (await post(pool, url)).content == BODY
    assert len(accepted) == 2


async def test_no_answer_in_time_is_a_read_timeout_and_the_connection_is_dropped() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(30)

    async with pool_for(silent) as (pool, url, _):
        with pytest.raises(httpx.ReadTimeout):
            await pool.handle_async_request(request_to(url, read_timeout=0.1))
        assert not pool._idle and not pool._open


async def test_a_body_that_stops_arriving_is_a_read_timeout() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"data\"")
        await writer.drain()
        await asyncio.sleep(30)

    async with pool_for(stalls) as (pool, url, _):
        response = await pool.handle_async_request(request_to(url, read_timeout=0.1))
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()
        await response.aclose()
        assert not pool._idle and not pool._open


async def test_an_upstream_that_leaves_mid_answer_is_a_protocol_error() -> None:
    async def leaves(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"data\"")
        await writer.drain()

    async with pool_for(leaves) as (pool, url, _):
        with pytest.raises(httpx.RemoteProtocolError, match="before its answer was complete"):
            await post(pool, url)


async def test_an_upstream_that_closes_without_answering_is_a_protocol_error() -> None:
    async def hangs_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with pool_for(hangs_up) as (pool, url, _):
        with pytest.raises(httpx.RemoteProtocolError):
            await post(pool, url)


async def test_a_malformed_answer_is_a_protocol_error() -> None:
    async with pool_for(answering(b"HTTP/1.1 2x0 Fine\r\n\r\n")) as (pool, url, _):
        with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
            await post(pool, url)
        assert not pool._idle


async def test_nothing_listening_is_a_connect_error() -> None:
    async with server(answering(OK)) as (url, _):
        pass
    pool = Pool(url, 4)
    with pytest.raises(httpx.ConnectError):
        await post(pool, url)


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async with pool_for(answering(OK)) as (pool, url, accepted):
        with pytest.raises(httpx.LocalProtocolError):
            await post(pool, url, authToken="t\r\nX-Injected: 1")
    assert accepted == []


async def test_a_request_for_another_origin_is_refused() -> None:
    async with pool_for(answering(OK)) as (pool, _, accepted):
        with pytest.raises(httpx.UnsupportedProtocol):
            await post(pool, "http://elsewhere.example")
    assert accepted == []


async def test_a_cancelled_request_drops_its_connection() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.3)
        writer.write(OK)
        await writer.drain()

    async with pool_for(slow) as (pool, url, accepted):
        task = asyncio.ensure_future(post(pool, url))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not pool._idle and not pool._open
        assert (await post(pool, url)).content == BODY  # a fresh connection
    assert len(accepted) == 2


def test_it_runs_on_uvloop_as_served() -> None:
    async def scenario() -> tuple[int, bytes]:
        chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n14\r\n" + BODY + \
            b"\r\n0\r\n\r\n"
        async with pool_for(answering(chunked)) as (pool, url, accepted):
            for _ in range(3):
                response = await post(pool, url)
            return len(accepted), response.content

    assert uvloop.run(scenario()) == (1, BODY)
