"""The upstream client: the exact request sent, and every failure as a contract error."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from legacy_bridge.errors import (
    BridgeError,
    RateLimited,
    UpstreamError,
    UpstreamQueryError,
    UpstreamTimeout,
)
from legacy_bridge.query import Document
from legacy_bridge.upstream import Policy, Upstream

ENDPOINT = "/api/public/api/v1/program-progress/graphql"
DOC = Document("query LegacyProgress($input: ProgramProgressInput!) { x }", "LegacyProgress")
VARIABLES = {"input": {"first": 1}}


async def run(response: httpx.Response | Exception) -> dict[str, object]:
    with respx.mock(base_url="http://up") as mock:
        mock.post(ENDPOINT).mock(side_effect=[response])
        client = Upstream("http://up/", Policy(timeout=5, retries=0))
        try:
            return await client.query(ENDPOINT, DOC, VARIABLES, "k")
        finally:
            await client.aclose()


async def test_sends_graphql_over_http_with_the_token_header() -> None:
    with respx.mock(base_url="http://up") as mock:
        route = mock.post(ENDPOINT).respond(json={"data": {"x": 1}})
        client = Upstream("http://up", Policy(timeout=5, retries=0))
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
        client = Upstream("http://up", Policy(timeout=5, retries=0))
        answers = await asyncio.gather(*(client.query(ENDPOINT, DOC, VARIABLES, "k")
                                         for _ in range(4)),
                                       client.query(ENDPOINT, DOC, VARIABLES, "other-key"))
        await client.aclose()
    assert answers == [{"x": 1}] * 5
    assert route.call_count == 2  # one per credential
    assert client.coalesced == 3
