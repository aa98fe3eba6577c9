"""The upstream client: the exact request sent, and every failure as a contract error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from legacy_bridge.errors import (
    BridgeError,
    ConfigError,
    RateLimited,
    UpstreamError,
    UpstreamQueryError,
    UpstreamTimeout,
)
from legacy_bridge.query import Document
from legacy_bridge.upstream import Policy, Upstream
from support import routed

ENDPOINT = "/api/public/api/v1/program-progress/graphql"
DOC = Document("query LegacyProgress($input: ProgramProgressInput!) { x }", "LegacyProgress")
VARIABLES = {"input": {"first": 1}}


async def run(response: httpx.Response | Exception) -> dict[str, object]:
    with respx.mock(base_url="http://up") as mock:
        mock.post(ENDPOINT).mock(side_effect=[response])
        client = Upstream("http://up/", Policy(timeout=5, retries=0), routed(mock))
        try:
            return await client.query(ENDPOINT, DOC, VARIABLES, "k")
        finally:
            await client.aclose()


async def test_sends_graphql_over_http_with_the_token_header() -> None:
    with respx.mock(base_url="http://up") as mock:
        route = mock.post(ENDPOINT).respond(json={"data": {"x": 1}})
        client = Upstream("http://up", Policy(timeout=5, retries=0), routed(mock))
        assert await client.query(ENDPOINT, DOC, VARIABLES, "secret-key") == {"x": 1}
        await client.aclose()
    request = route.calls.last.request
    assert request.headers["authorization"] == "Token secret-key"
    assert json.loads(request.content) == {"query": DOC.text, "variables": VARIABLES,
                                           "operationName": "LegacyProgress"}


@pytest.mark.parametrize(("response", "error"), [
    (httpx.Response(500), UpstreamError),
    (httpx.Response(503, text="db down at 10.0.0.3"), UpstreamError),
    (httpx.Response(401), UpstreamError),
    (httpx.Response(403), UpstreamError),
    (httpx.Response(200, text="{not json"), UpstreamError),
    (httpx.Response(200, json=[1, 2]), UpstreamError),
    (httpx.Response(200, json={"errors": [{"message": "bad cursor"}], "data": None}),
     UpstreamQueryError),
    (httpx.Response(400, json={"errors": [{"message": "bad cursor"}]}), UpstreamQueryError),
    (httpx.ConnectError("refused"), UpstreamError),
    (httpx.RemoteProtocolError("dropped"), UpstreamError),
    (httpx.ReadTimeout("slow"), UpstreamTimeout),
    (httpx.ConnectTimeout("slow"), UpstreamTimeout),
])
async def test_failures_become_contract_errors_without_upstream_text(
        response: httpx.Response | Exception, error: type[BridgeError]) -> None:
    with pytest.raises(error) as caught:
        await run(response)
    assert "10.0.0.3" not in caught.value.message and "bad cursor" not in caught.value.message


async def test_rate_limit_passes_retry_after_on() -> None:
    with pytest.raises(RateLimited) as caught:
        await run(httpx.Response(429, headers={"Retry-After": "12"}))
    assert caught.value.headers == {"Retry-After": "12"}


async def test_rate_limit_without_a_usable_retry_after_says_one_second() -> None:
    with pytest.raises(RateLimited) as caught:
        await run(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}))
    assert caught.value.headers == {"Retry-After": "1"}


async def test_identical_requests_in_flight_share_one_upstream_call() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(200, json={"data": {"x": 1}})

    with respx.mock(base_url="http://up") as mock:
        route = mock.post(ENDPOINT).mock(side_effect=slow)
        client = Upstream("http://up", Policy(timeout=5, retries=0), routed(mock))
        answers = await asyncio.gather(*(client.query(ENDPOINT, DOC, VARIABLES, "k")
                                         for _ in range(4)),
                                       client.query(ENDPOINT, DOC, VARIABLES, "other-key"))
        await client.aclose()
    assert answers == [{"x": 1}] * 5
    assert route.call_count == 2  # one per credential
    assert client.coalesced == 3


class EgressProxy:
    """A forward proxy stand-in: records what reaches it, answers one GraphQL result."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (Host header, path)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"").decode()
        self.seen.append((host, scope["path"]))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"data": {"ok": true}}'})


async def test_the_upstream_is_reached_through_the_egress_proxy_the_environment_names(
        serve_http: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = EgressProxy()
    monkeypatch.setenv("HTTP_PROXY", serve_http(proxy))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    upstream = Upstream("http://upstream.example", Policy(retries=0))
    try:
        data = await upstream.query("/graphql", DOC, {}, "key")
    finally:
        await upstream.aclose()
    assert data == {"ok": True}
    assert proxy.seen == [("upstream.example", "/graphql")]


async def test_no_proxy_exempts_the_upstream_host(
        serve_http: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = EgressProxy()
    monkeypatch.setenv("HTTP_PROXY", serve_http(proxy))
    monkeypatch.setenv("NO_PROXY", "upstream.example")
    upstream = Upstream("http://upstream.example", Policy(retries=0))
    try:
        with pytest.raises(UpstreamError):  # sent directly: the name does not resolve
            await upstream.query("/graphql", DOC, {}, "key")
    finally:
        await upstream.aclose()
    assert proxy.seen == []


async def test_a_loopback_upstream_is_never_proxied(
        serve_http: Callable[[Any], str], monkeypatch: pytest.MonkeyPatch) -> None:
    direct = EgressProxy()  # here it stands for the upstream itself
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    upstream = Upstream(serve_http(direct), Policy(retries=0))
    try:
        assert await upstream.query("/graphql", DOC, {}, "key") == {"ok": True}
    finally:
        await upstream.aclose()


def test_an_unreadable_ca_file_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BRIDGE_UPSTREAM_CA_FILE"):
        Upstream("https://upstream.example", Policy(), ca_file=tmp_path / "missing.pem")
