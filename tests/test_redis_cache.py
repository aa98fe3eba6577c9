"""Checkpoints shared through a real Redis: replicas share crawls; Redis down is still right."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.redis_cache import RedisCheckpoints
from support import legacy


@pytest.fixture
def redis_url(redis_server: str) -> str:
    return redis_server


def prefix() -> str:
    return f"test-{uuid.uuid4().hex}:"


async def test_store_and_nearest_round_trip(redis_url: str) -> None:
    cache = RedisCheckpoints(redis_url, ttl=60, per_query=100, prefix=prefix())
    await cache.store("q", 100, "c:100")  # colons in cursors survive
    await cache.store("q", 200, "c200")
    await cache.store("q", 200, "c200-new")  # one cursor per offset
    assert await cache.nearest("q", 150) == (100, "c:100")
    assert await cache.nearest("q", 999) == (200, "c200-new")
    assert await cache.nearest("q", 50) == (0, None)
    assert await cache.nearest("other", 150) == (0, None)
    await cache.drop("q")
    assert await cache.nearest("q", 150) == (0, None)
    await cache.aclose()


async def test_a_full_query_keeps_its_highest_offsets(redis_url: str) -> None:
    cache = RedisCheckpoints(redis_url, ttl=60, per_query=2, prefix=prefix())
    for offset in (10, 20, 30):
        await cache.store("q", offset, f"c{offset}")
    assert await cache.nearest("q", 15) == (0, None)
    assert await cache.nearest("q", 35) == (30, "c30")
    await cache.aclose()


async def test_checkpoints_expire(redis_url: str) -> None:
    cache = RedisCheckpoints(redis_url, ttl=1, per_query=10, prefix=prefix())
    await cache.store("q", 10, "c10")
    await asyncio.sleep(1.2)
    assert await cache.nearest("q", 15) == (0, None)
    await cache.aclose()


async def test_two_replicas_share_checkpoints(
        make_proxy: Callable[..., Starlette], redis_url: str,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    url = f"{redis_url[:-1]}1"  # a database of its own for this test
    first, second = make_proxy(cursor_cache=url), make_proxy(cursor_cache=url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first),
                                 base_url="http://a") as a, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=second),
                              base_url="http://b") as b:
        await first.state.bridge.checkpoints._redis.flushdb()
        pages = [(await legacy(client, "assessment-attempts", f"page={page}&per_page=50"))
                 .json()["results"]
                 for page, client in zip(range(1, 7), [a, b, a, b, a, b], strict=True)]
        await first.state.bridge.checkpoints.aclose()
        await second.state.bridge.checkpoints.aclose()
    assert all(pages) and len({p[0]["attempt_id"] for p in pages}) == 6
    # the second replica continues the first's crawl: one upstream request per page
    assert upstream_counts()["assessment-progress"] == 6


async def test_redis_down_still_answers_right_by_walking(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    app = make_proxy(cursor_cache="redis://127.0.0.1:9/0")  # nothing listens there
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        for page in (1, 2, 3):
            ours = await legacy(proxy, "users", f"page={page}&per_page=50")
            theirs = await legacy(emulator, "users", f"page={page}&per_page=50")
            assert ours.json() == theirs.json()
        metrics = (await proxy.get("/metrics")).text
        await app.state.bridge.checkpoints.aclose()
    # walked from the start each time: page 2 fits one request, page 3 needs two
    assert upstream_counts()["learning-plan-progress"] == 1 + 1 + 2
    assert "bridge_checkpoint_cache_failures_total" in metrics
    assert app.state.bridge.checkpoints.failures >= 6
