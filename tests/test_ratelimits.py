"""Per-client limits from the token table: a rate and a cap on requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.auth import digest, load_tokens
from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.errors import TokenFileError

USERS = f"/api/v2/plans/{DEMO_PLAN_ID}/users?per_page=2"
EXPORTER = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}
OTHER = {"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}


def limited_tokens(tmp_path: Path, limits: str) -> Path:
    path = tmp_path / "limited-tokens.toml"
    path.write_text(
        f'[[tokens]]\nlabel = "bulk-exporter"\nsha256 = "{digest(DEMO_COMPANY_TOKEN)}"\n'
        f'plans = ["*"]\n{limits}\n\n'
        f'[[tokens]]\nlabel = "acme-lms"\nsha256 = "{digest(DEMO_PLAN_TOKEN)}"\n'
        f'plans = ["{DEMO_PLAN_ID}"]\n')
    return path


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")


async def test_a_client_over_its_rate_gets_429_and_the_others_do_not(
        make_proxy: Callable[..., Starlette], tmp_path: Path) -> None:
    app = make_proxy(tokens_file=limited_tokens(tmp_path, 'rate = "3/minute"'))
    async with app.router.lifespan_context(app), client(app) as proxy:
        statuses = [(await proxy.get(USERS, headers=EXPORTER)).status_code for _ in range(3)]
        refused = await proxy.get(USERS, headers=EXPORTER)
        others = await proxy.get(USERS, headers=OTHER)
        metrics = (await proxy.get("/metrics")).text
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert others.status_code == 200
    assert 'bridge_client_rate_limited_total{client="bulk-exporter",limit="rate"} 1.0' in metrics
    assert DEMO_COMPANY_TOKEN not in refused.text + metrics


async def test_a_client_over_its_requests_in_flight_gets_429(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient,
        tmp_path: Path) -> None:
    app = make_proxy(tokens_file=limited_tokens(tmp_path, "concurrent = 1"))
    await emulator.post("/_emulator/latency", json={"ms": 300})
    async with app.router.lifespan_context(app), client(app) as proxy:
        answers = await asyncio.gather(proxy.get(USERS, headers=EXPORTER),
                                       proxy.get(USERS, headers=EXPORTER))
        after = await proxy.get(USERS, headers=EXPORTER)  # the first has finished
    assert sorted(a.status_code for a in answers) == [200, 429]
    assert after.status_code == 200


async def test_two_replicas_share_one_rate_through_redis(
        make_proxy: Callable[..., Starlette], tmp_path: Path, redis_server: str) -> None:
    tokens = limited_tokens(tmp_path, f'rate = "3/minute"\n# {tmp_path.name}')
    replicas = [make_proxy(tokens_file=tokens, rate_limit_storage=redis_server)
                for _ in range(2)]
    # a label of its own per test run: the shared server keeps windows for a minute
    async with replicas[0].router.lifespan_context(replicas[0]), \
            replicas[1].router.lifespan_context(replicas[1]), \
            client(replicas[0]) as first, client(replicas[1]) as second:
        for proxy in (first, second):  # a fresh window for this test's label
            await proxy.get("/healthz")
        statuses = [(await (first, second)[n % 2].get(USERS, headers=EXPORTER)).status_code
                    for n in range(4)]
    assert statuses == [200, 200, 200, 429]


async def test_an_unreachable_rate_store_lets_requests_through(
        make_proxy: Callable[..., Starlette], tmp_path: Path) -> None:
    app = make_proxy(tokens_file=limited_tokens(tmp_path, 'rate = "1/minute"'),
                     rate_limit_storage="redis://127.0.0.1:9/0")
    async with app.router.lifespan_context(app), client(app) as proxy:
        statuses = [(await proxy.get(USERS, headers=EXPORTER)).status_code for _ in range(2)]
    assert statuses == [200, 200]


@pytest.mark.parametrize(("limits", "says"), [('rate = "lots"', "not like"),
                                              ("concurrent = 0", "tokens.0.concurrent")])
def test_a_bad_limit_in_the_token_table_names_it(tmp_path: Path, limits: str,
                                                  says: str) -> None:
    with pytest.raises(TokenFileError, match=says):
        load_tokens(limited_tokens(tmp_path, limits))
