"""Issue 14, item 1: no SQL statement can freeze the proxy for everyone else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from support import DATA_API, sql_refused

COMPANY = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}
# every row compared with 999 computed values: CPU in the proxy, within every cap
HEAVY = ("SELECT email FROM roster_v1 WHERE email IN ("
         + ", ".join(["first_name", "last_name", "nd_title"] * 333) + ")")


async def test_an_in_list_past_the_cap_is_400(proxy: httpx.AsyncClient) -> None:
    values = ", ".join(f"'v{i}'" for i in range(1001))
    message = await sql_refused(proxy, f"SELECT email FROM roster_v1 WHERE email IN ({values})")
    assert "BRIDGE_SQL_MAX_IN_ITEMS" in message


async def test_a_like_pattern_past_the_wildcard_cap_is_400(proxy: httpx.AsyncClient) -> None:
    message = await sql_refused(proxy, "SELECT email FROM roster_v1 WHERE email LIKE '"
                            + "%_" * 17 + "!'")
    assert "BRIDGE_SQL_MAX_LIKE_WILDCARDS" in message


async def test_the_hostile_like_of_the_review_answers(proxy: httpx.AsyncClient) -> None:
    answer = await proxy.post(DATA_API, headers=COMPANY, json={
        "query": "SELECT email FROM roster_v1 WHERE email LIKE '%_%_%_%_%_%_%_%_%!'"})
    assert answer.status_code == 200 and answer.json()["rows"] == []


async def test_healthz_answers_while_a_heavy_statement_is_evaluated(
        make_proxy: Callable[..., Starlette],
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    app = make_proxy()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        heavy = asyncio.create_task(proxy.post(DATA_API, json={"query": HEAVY},
                                               headers=COMPANY))
        while not upstream_counts().get("program-progress"):  # its rows are arriving
            await asyncio.sleep(0)
        health = await proxy.get("/healthz")
        answered_first = not heavy.done()
        assert (await heavy).status_code == 200
    assert health.status_code == 200
    assert answered_first  # measured as an order of events, not as a time


async def test_a_statement_past_its_cpu_budget_is_400(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(sql_max_cpu_seconds=0.001)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        assert "BRIDGE_SQL_MAX_CPU_SECONDS" in await sql_refused(proxy, HEAVY)
