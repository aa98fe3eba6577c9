"""Upstream faults: retries, the circuit breaker, the request bound, the deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
import respx
from starlette.applications import Starlette

from legacy_bridge.breaker import Breaker
from legacy_bridge.errors import UpstreamError, UpstreamUnavailable
from legacy_bridge.query import Document
from legacy_bridge.upstream import Policy, Upstream
from support import FakeClock, legacy, routed

USERS_API = "learning-plan-progress"


@pytest.fixture
def make_client(make_proxy: Callable[..., Starlette]) -> Callable[..., httpx.AsyncClient]:
    def make(**overrides: object) -> httpx.AsyncClient:
        app = make_proxy(**{"upstream_backoff": 0.0, **overrides})
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy")

    return make


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fragile(make_client: Callable[..., httpx.AsyncClient], clock: FakeClock,
                  ) -> AsyncIterator[httpx.AsyncClient]:
    """A proxy whose breaker opens after 3 failures and probes again after 5 s (its clock)."""
    async with make_client(breaker_failures=3, breaker_reset=5, upstream_retries=0,
                           clock=clock) as client:
        yield client


async def inject(emulator: httpx.AsyncClient, kind: str, count: int = 1) -> None:
    await emulator.post("/_emulator/faults", json={"kind": kind, "count": count})


@pytest.mark.parametrize("kind", ["http_502", "http_503", "http_504"])
async def test_retryable_statuses_are_retried_and_the_client_never_notices(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, kind: str,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    await inject(emulator, kind, 2)
    assert (await legacy(proxy, "users")).status_code == 200
    assert upstream_counts()[USERS_API] == 3


@pytest.mark.parametrize("kind", ["http_500", "http_429", "malformed_json", "graphql_error",
                                  "http_401"])
async def test_other_faults_are_not_retried(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, kind: str,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    await inject(emulator, kind)
    assert (await legacy(proxy, "users")).status_code in (429, 502)
    assert upstream_counts()[USERS_API] == 1


async def test_breaker_opens_after_consecutive_failures_and_answers_503_at_once(
        fragile: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    await inject(emulator, "http_500", 3)
    statuses = [(await legacy(fragile, "users")).status_code for _ in range(3)]
    refused = await legacy(fragile, "users")
    assert statuses == [502, 502, 502]
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "upstream_unavailable"
    assert int(refused.headers["retry-after"]) >= 1
    assert upstream_counts()[USERS_API] == 3  # the refused request never went upstream


async def test_breaker_is_per_api(fragile: httpx.AsyncClient,
                                  emulator: httpx.AsyncClient) -> None:
    await inject(emulator, "http_500", 3)
    for _ in range(3):
        await legacy(fragile, "users")
    assert (await legacy(fragile, "users")).status_code == 503
    assert (await legacy(fragile, "assessment-attempts")).status_code == 200
    metrics = (await fragile.get("/metrics")).text
    assert 'bridge_upstream_breaker_open{api="learning-plan-progress"} 1.0' in metrics
    assert 'bridge_upstream_breaker_open{api="assessment-progress"} 0.0' in metrics
    assert 'bridge_build_info{python="' in metrics


async def test_breaker_probe_after_the_reset_closes_it(
        fragile: httpx.AsyncClient, emulator: httpx.AsyncClient, clock: FakeClock) -> None:
    await inject(emulator, "http_500", 3)
    for _ in range(3):
        await legacy(fragile, "users")
    clock.advance(4.9)
    assert (await legacy(fragile, "users")).status_code == 503  # still open
    clock.advance(0.2)
    assert (await legacy(fragile, "users")).status_code == 200
    assert (await legacy(fragile, "users")).status_code == 200


async def test_failed_probe_opens_the_breaker_again(
        fragile: httpx.AsyncClient, emulator: httpx.AsyncClient, clock: FakeClock) -> None:
    await inject(emulator, "http_500", 4)
    for _ in range(3):
        await legacy(fragile, "users")
    clock.advance(5.1)
    assert (await legacy(fragile, "users")).status_code == 502  # the probe
    assert (await legacy(fragile, "users")).status_code == 503


async def test_rate_limits_do_not_open_the_breaker(
        fragile: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    await inject(emulator, "http_429", 5)
    statuses = [(await legacy(fragile, "users")).status_code for _ in range(6)]
    assert statuses == [429] * 5 + [200]


async def test_total_deadline_bounds_the_answer_whatever_the_retries(
        make_client: Callable[..., httpx.AsyncClient], emulator: httpx.AsyncClient) -> None:
    await emulator.post("/_emulator/latency", json={"ms": 400})
    async with make_client(total_deadline=0.1) as client:
        response = await legacy(client, "users")
    assert (response.status_code, response.json()["error"]["code"]) == (504,
                                                                        "upstream_timeout")


async def test_full_upstream_queue_is_503(
        make_client: Callable[..., httpx.AsyncClient], emulator: httpx.AsyncClient) -> None:
    await emulator.post("/_emulator/latency", json={"ms": 300})
    async with make_client(upstream_concurrency=1, upstream_queue_timeout=0.05) as client:
        first, second = await asyncio.gather(legacy(client, "users", "per_page=3"),
                                             legacy(client, "users", "per_page=4"))
    assert sorted([first.status_code, second.status_code]) == [200, 503]
    refused = first if first.status_code == 503 else second
    assert refused.json()["error"]["code"] == "upstream_unavailable"
    assert refused.headers["retry-after"] == "1"


async def test_oversized_upstream_answer_is_502() -> None:
    document = Document("query Q { x }", "Q")
    with respx.mock(base_url="http://up") as mock:
        mock.post("/g").respond(200, content=b'{"data": {"x": "' + b"a" * 5000 + b'"}}')
        client = Upstream("http://up", Policy(max_response_bytes=1024, retries=0), routed(mock))
        with pytest.raises(UpstreamError, match="exceeded 1024 bytes"):
            await client.query("/g", document, {}, "k")
        await client.aclose()


async def test_connection_errors_are_retried_then_502() -> None:
    document = Document("query Q { x }", "Q")
    with respx.mock(base_url="http://up") as mock:
        route = mock.post("/g").mock(side_effect=httpx.ConnectError("refused"))
        client = Upstream("http://up", Policy(retries=2, backoff=0), routed(mock))
        with pytest.raises(UpstreamError, match="connection failed"):
            await client.query("/g", document, {}, "k")
        await client.aclose()
    assert route.call_count == 3


def test_breaker_state_machine() -> None:
    now = [0.0]
    breaker = Breaker(failures_to_open=2, reset_seconds=5, clock=lambda: now[0])
    breaker.failure()
    assert breaker.allow() and breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 3.2
    assert breaker.retry_after() == 2
    now[0] = 5.0
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.abandon()
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.failures == 0


def test_unavailable_error_carries_retry_after() -> None:
    error = UpstreamUnavailable("down", {"Retry-After": "4"})
    assert error.status == 503 and error.headers == {"Retry-After": "4"}
