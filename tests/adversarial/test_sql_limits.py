"""Issue 14, items 6 and 8: SQL that once answered 500, 200 or a learner's value."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from support import DATA_API, sql_refused

COMPANY = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}


@pytest.mark.parametrize("sql", [
    "SELECT email FROM roster_v1 LIMIT " + "9" * 5000,
    "SELECT email FROM roster_v1 OFFSET " + "9" * 5000,
    "SELECT email FROM roster_v1 ORDER BY " + "9" * 5000,
    "SELECT email FROM roster_v1 WHERE core_projects_passed = " + "9" * 5000,
    "SELECT email FROM roster_v1 LIMIT 99999999999999999999",  # past bigint, as in Postgres
])
async def test_huge_integer_literals_are_400_not_500(
        proxy: httpx.AsyncClient, upstream_counts: Callable[[], dict[str, int]],
        sql: str) -> None:
    await sql_refused(proxy, sql)
    assert upstream_counts() == {}


async def test_a_long_but_valid_number_compares_as_numeric(proxy: httpx.AsyncClient) -> None:
    answer = await proxy.post(DATA_API, headers=COMPANY, json={
        "query": "SELECT COUNT(*) FROM roster_v1 WHERE core_projects_passed < "
                 "123456789012345678901234"})
    assert answer.status_code == 200 and answer.json()["rows"][0][0] > 0


@pytest.mark.parametrize("sql", [
    "SELECT email FROM roster_v1 TABLESAMPLE SYSTEM (10)",   # was silently ignored
    "SELECT email FROM roster_v1 WHERE email IN ()",         # a syntax error in Postgres
    "SELECT email FROM roster_v1 WHERE node_key IN ()",
])
async def test_what_postgres_refuses_is_refused(proxy: httpx.AsyncClient, sql: str) -> None:
    await sql_refused(proxy, sql)


async def test_a_stored_value_that_fails_a_cast_is_not_quoted_in_the_error(
        proxy: httpx.AsyncClient) -> None:
    message = await sql_refused(proxy, "SELECT email FROM roster_v1 WHERE first_name::INTEGER = 1")
    assert "a stored value is not a valid integer" in message
    # the client's own literal may be quoted back
    assert "'x'" in await sql_refused(proxy, "SELECT email FROM roster_v1 WHERE "
                                         "core_projects_passed = 'x'")


@pytest.mark.parametrize("sql", [
    "SELECT node_key, COUNT(*) FROM roster_v1 GROUP BY node_key",              # from totals
    "SELECT node_key, COUNT(*) FROM roster_v1 WHERE email LIKE '%a%' GROUP BY node_key",
])
async def test_groups_count_against_the_row_bound(make_proxy: Callable[..., Starlette],
                                                  sql: str) -> None:
    app = make_proxy(sql_max_rows=5)  # the data has 10 programs
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        answer = await proxy.post(DATA_API, json={"query": sql}, headers=COMPANY)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "result_too_large"
