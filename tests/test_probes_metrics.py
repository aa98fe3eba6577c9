"""Probes and Prometheus metrics of the sidecar."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from support import TOKENS, legacy


async def test_healthz_is_alive_whatever_the_upstream(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    await emulator.post("/_emulator/faults", json={"kind": "http_503", "seconds": 5})
    assert (await proxy.get("/healthz")).status_code == 200


async def test_readyz_is_ready_when_every_upstream_answers(proxy: httpx.AsyncClient) -> None:
    response = await proxy.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["mappings"] == "loaded"
    assert set(body["upstreams"].values()) == {"ok"}
    # three progress APIs, the catalog (Data API) and Learning Path (course progress)
    assert len(body["upstreams"]) == 5


async def test_readyz_turns_false_when_an_upstream_is_down(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient) -> None:
    app = make_proxy(ready_cache_seconds=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        assert (await proxy.get("/readyz")).status_code == 200
        await emulator.post("/_emulator/faults", json={
            "kind": "http_503", "count": 1, "api": "assessment-progress"})
        down = await proxy.get("/readyz")  # the one failing answer
        back = await proxy.get("/readyz")
    assert down.status_code == 503
    assert down.json()["upstreams"]["/api/public/api/v1/assessment-progress/graphql"] == \
        "HTTP 503"
    assert back.status_code == 200


def test_readyz_turns_false_when_the_upstream_is_unreachable(
        make_proxy: Callable[..., Starlette], serve_http: Callable[[Starlette], str]) -> None:
    base = serve_http(make_proxy(over_http=True, upstream_url="http://127.0.0.1:9",
                                 upstream_connect_timeout=0.5))
    response = httpx.get(f"{base}/readyz")
    assert response.status_code == 503
    assert set(response.json()["upstreams"].values()) == {"unreachable"}


async def test_readyz_caches_its_check_briefly(
        proxy: httpx.AsyncClient, upstream_counts: Callable[[], dict[str, int]]) -> None:
    for _ in range(3):
        await proxy.get("/readyz")
    assert sum(upstream_counts().values()) == 5  # one probe per API, once


async def test_metrics_count_legacy_and_upstream_requests_by_route_and_api(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    await legacy(proxy, "users", "per_page=10")
    await legacy(proxy, "users", "per_page=10&page=2")
    await legacy(proxy, "users", "page=0")
    await emulator.post("/_emulator/faults", json={"kind": "http_429"})
    await legacy(proxy, "progress", "per_page=3")
    text = (await proxy.get("/metrics")).text
    route = 'route="/api/v2/plans/{planId}/users"'
    assert f'bridge_legacy_requests_total{{{route},status="200"}} 2.0' in text
    assert f'bridge_legacy_requests_total{{{route},status="400"}} 1.0' in text
    assert f"bridge_legacy_request_seconds_count{{{route}}} 3.0" in text
    assert ('bridge_upstream_requests_total{api="learning-plan-progress",outcome="ok"} 2.0'
            in text)
    assert ('bridge_upstream_requests_total{api="program-progress",outcome="rate_limited"} 1.0'
            in text)
    assert 'bridge_upstream_request_seconds_count{api="learning-plan-progress"} 2.0' in text
    assert "bridge_checkpoint_hits_total 1.0" in text
    assert "bridge_checkpoints 2.0" in text
    assert "bridge_upstream_coalesced_total 0.0" in text


async def test_metrics_carry_no_token_key_or_plan(proxy: httpx.AsyncClient) -> None:
    for token in TOKENS:
        await legacy(proxy, "users", headers={"Authorization": f"Bearer {token}"})
    text = (await proxy.get("/metrics")).text
    for secret in [*TOKENS, DEMO_API_KEY, DEMO_PLAN_TOKEN, "fd6f0490"]:
        assert secret not in text
