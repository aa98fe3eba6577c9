"""POST /api/emc/reports/query: the legacy Data API, answered over GraphQL.

Every answer is checked against the emulator's legacy Data API, which
evaluates the same SQL directly in SQLite over the same dataset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.controls import Fault
from support import DATA_API, FakeClock, sql_answer

SEED_003_GRADUATED = """SELECT email, nd_title, graduated_at::DATE
FROM roster_v1
WHERE graduated_at IS NOT NULL
AND graduated_at::date > '2026-01-01'::DATE"""
SEED_003_ENROLLED = """SELECT email, last_seen, enrollment_state
FROM roster_v1
WHERE enrollment_state = 'enrolled'
ORDER BY last_seen ASC"""


def requests_of(emulator_app: Starlette, api: str) -> list[dict[str, Any]]:
    return [r for r in emulator_app.state.controls.log if r["api"] == api]


async def test_seed_003_graduated_since_returns_the_legacy_rows(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    ours = await sql_answer(proxy, SEED_003_GRADUATED)
    theirs = await sql_answer(emulator, SEED_003_GRADUATED)
    assert ours["columns"] == theirs["columns"] == ["email", "nd_title", "graduated_at"]
    assert sorted(ours["rows"]) == sorted(theirs["rows"])
    assert ours["row_count"] == theirs["row_count"] > 0


async def test_seed_003_graduated_since_keeps_completed_learners_of_any_status(
        emulator: httpx.AsyncClient) -> None:
    statuses = await sql_answer(emulator, "SELECT DISTINCT enrollment_state FROM roster_v1 "
                                "WHERE graduated_at::date > '2026-01-01'::DATE")
    assert len(statuses["rows"]) > 1  # the guide's GRADUATED filter would lose rows


async def test_seed_003_graduated_since_does_not_push_down_graduated(
        proxy: httpx.AsyncClient, emulator_app: Starlette) -> None:
    await sql_answer(proxy, SEED_003_GRADUATED)
    sent = requests_of(emulator_app, "program-progress")
    assert sent and all("filter" not in r["variables"]["input"] for r in sent)


async def test_seed_003_enrolled_by_activity_returns_the_legacy_rows_in_order(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    ours = await sql_answer(proxy, SEED_003_ENROLLED)
    theirs = await sql_answer(emulator, SEED_003_ENROLLED)
    assert ours["columns"] == theirs["columns"] == ["email", "last_seen", "enrollment_state"]
    assert [r[1] for r in ours["rows"]] == [r[1] for r in theirs["rows"]]
    assert sorted(ours["rows"], key=repr) == sorted(theirs["rows"], key=repr)


async def test_seed_003_enrolled_by_activity_pushes_down_the_guides_variables(
        proxy: httpx.AsyncClient, emulator_app: Starlette) -> None:
    await sql_answer(proxy, SEED_003_ENROLLED)
    sent = requests_of(emulator_app, "program-progress")
    assert sent
    for request in sent:
        variables = request["variables"]["input"]
        assert variables["filter"] == {"enrollmentStatus": ["ENROLLED"]}
        assert (variables["orderBy"], variables["order"]) == ("LAST_ACTIVE", "ASC")


async def test_count_with_a_pushed_down_where_costs_one_request(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    query = "SELECT COUNT(*) FROM roster_v1 WHERE enrollment_state IN ('enrolled', 'graduated')"
    ours = await sql_answer(proxy, query)
    assert upstream_counts() == {"program-progress": 1}
    assert ours == await sql_answer(emulator, query)


async def test_grouped_count_costs_one_request_per_group(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    query = ("SELECT enrollment_state, COUNT(*) FROM roster_v1 WHERE node_key = 'nd00113' "
             "GROUP BY enrollment_state ORDER BY enrollment_state")
    ours = await sql_answer(proxy, query)
    assert upstream_counts() == {"program-progress": 4}  # the four enrollment states
    assert ours == await sql_answer(emulator, query)


async def test_grouped_count_by_program_reads_the_catalog_once(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    query = "SELECT node_key, COUNT(*) AS n FROM roster_v1 GROUP BY node_key ORDER BY node_key"
    ours = await sql_answer(proxy, query)
    await sql_answer(proxy, query)
    catalog_programs = 11
    assert upstream_counts() == {"catalog": 1, "program-progress": 2 * catalog_programs}
    assert ours == await sql_answer(emulator, query)


async def test_limit_with_a_pushed_down_filter_costs_one_request(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    query = ("SELECT email, node_key FROM roster_v1 WHERE enrollment_state = 'enrolled' "
             "ORDER BY email LIMIT 10")
    ours = await sql_answer(proxy, query)
    assert upstream_counts() == {"program-progress": 1}
    assert [r[0] for r in ours["rows"]] == [r[0] for r in
                                            (await sql_answer(emulator, query))["rows"]]
    assert ours["row_count"] == 10


async def test_csv_has_a_header_row_and_the_json_rows(proxy: httpx.AsyncClient) -> None:
    query = "SELECT email, last_seen FROM roster_v1 ORDER BY email LIMIT 3"
    answer = await proxy.post(DATA_API, json={"query": query}, headers={
        "authorization": f"Bearer {DEMO_COMPANY_TOKEN}", "accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    lines = answer.text.splitlines()
    rows = (await sql_answer(proxy, query))["rows"]
    assert lines[0] == "email,last_seen"
    assert lines[1:] == [f"{email},{seen or ''}" for email, seen in rows]


async def post_csv(app: Starlette, query: str,
                   on_first_rows: Callable[[], None] = lambda: None,
                   ) -> tuple[int, list[tuple[bytes, bool]], Exception | None]:
    """Call the app at the ASGI level: the status, each body message as sent,
    and what the app raised to its server (only after the status was sent)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": DATA_API, "raw_path": DATA_API.encode(),
             "query_string": b"", "root_path": "", "server": ("proxy", 80),
             "client": ("127.0.0.1", 5000),
             "headers": [(b"authorization", f"Bearer {DEMO_COMPANY_TOKEN}".encode()),
                         (b"content-type", b"text/plain"), (b"accept", b"text/csv")]}
    body, status, sent = [query.encode()], [], []

    async def receive() -> dict[str, Any]:
        if body:
            return {"type": "http.request", "body": body.pop(), "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            if not sent:
                on_first_rows()
            sent.append((message.get("body", b""), message.get("more_body", False)))

    try:
        await app(scope, receive, send)
    except Exception as exc:
        return status[0], sent, exc
    return status[0], sent, None


async def test_csv_rows_are_sent_before_the_last_page_is_read(
        make_proxy: Callable[..., Starlette],
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    app = make_proxy()
    pages_read: list[int] = []
    async with app.router.lifespan_context(app):
        status, sent, error = await post_csv(
            app, "SELECT email FROM roster_v1",
            on_first_rows=lambda: pages_read.append(upstream_counts()["program-progress"]))
    assert (status, error) == (200, None)
    assert pages_read[0] < upstream_counts()["program-progress"]
    assert sent[-1][1] is False  # the body ended properly


async def test_csv_without_a_proxy_sort_is_not_bounded_by_max_rows(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient) -> None:
    app = make_proxy(sql_max_rows=50)
    async with app.router.lifespan_context(app):
        status, sent, _ = await post_csv(app, "SELECT email FROM roster_v1")
        sorted_status, _, _ = await post_csv(  # two sort keys: sorted in the proxy
            app, "SELECT email FROM roster_v1 ORDER BY email, last_seen")
    legacy = await sql_answer(emulator, "SELECT email FROM roster_v1")
    lines = b"".join(chunk for chunk, _ in sent).decode().splitlines()
    assert (status, sorted_status) == (200, 413)
    assert sorted(lines[1:]) == sorted(email for (email,) in legacy["rows"])


async def test_a_failure_after_the_first_csv_rows_cuts_the_transfer_off(
        make_proxy: Callable[..., Starlette], emulator_app: Starlette,
        caplog: pytest.LogCaptureFixture) -> None:
    app = make_proxy()
    outage = Fault("http_503", "program-progress", until=float("inf"))
    async with app.router.lifespan_context(app):
        status, sent, error = await post_csv(
            app, "SELECT email FROM roster_v1",
            on_first_rows=lambda: emulator_app.state.controls.faults.append(outage))
    assert status == 200 and error is not None
    assert "CSV answer cut off" in caplog.text
    assert sent[0][0].startswith(b"email\r\n")
    # no final (more_body False) message: the client sees a cut-off transfer
    assert all(more for _, more in sent)


async def test_sql_may_be_sent_as_text_plain(proxy: httpx.AsyncClient) -> None:
    answer = await proxy.post(DATA_API, content="SELECT COUNT(*) FROM roster_v1",
                              headers={"authorization": f"Bearer {DEMO_COMPANY_TOKEN}",
                                       "content-type": "text/plain"})
    assert answer.status_code == 200
    assert answer.json()["columns"] == ["count"]


async def test_a_plan_token_may_not_call_the_data_api(
        proxy: httpx.AsyncClient, upstream_counts: Callable[[], dict[str, int]]) -> None:
    answer = await proxy.post(DATA_API, json={"query": "SELECT email FROM roster_v1"},
                              headers={"authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "forbidden"
    assert upstream_counts() == {}


async def test_no_token_is_401(proxy: httpx.AsyncClient) -> None:
    answer = await proxy.post(DATA_API, json={"query": "SELECT email FROM roster_v1"})
    assert answer.status_code == 401


async def test_get_is_405_allowing_post(proxy: httpx.AsyncClient) -> None:
    answer = await proxy.get(DATA_API)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


@pytest.mark.parametrize("body", [{"sql": "SELECT 1"}, ["SELECT"], {"query": ""}])
async def test_a_body_without_sql_is_400(proxy: httpx.AsyncClient, body: Any) -> None:
    answer = await proxy.post(DATA_API, json=body,
                              headers={"authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_parameter"


async def test_more_rows_than_the_setting_is_413(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(sql_max_rows=50)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as client:
        answer = await client.post(DATA_API, json={"query": "SELECT email FROM roster_v1"},
                                   headers={"authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
        limited = await sql_answer(client, "SELECT email FROM roster_v1 LIMIT 50")
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "result_too_large"
    assert "LIMIT" in answer.json()["error"]["message"]
    assert limited["row_count"] == 50


async def test_the_catalog_is_fetched_again_after_its_ttl(
        make_proxy: Callable[..., Starlette],
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    clock = FakeClock()
    app = make_proxy(catalog_ttl=60, clock=clock)
    query = "SELECT nd_title FROM roster_v1 WHERE node_key = 'nd089' LIMIT 1"
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as client:
        await sql_answer(client, query)
        await sql_answer(client, query)
        clock.advance(59)
        await sql_answer(client, query)
        assert upstream_counts()["catalog"] == 1
        clock.advance(2)
        answer = await sql_answer(client, query)
    assert upstream_counts()["catalog"] == 2
    assert answer["rows"] == [["AI Programming with Python"]]


@pytest.mark.parametrize("order", ["", "ASC", "DESC", "NULLS FIRST", "ASC NULLS LAST",
                                   "DESC NULLS LAST", "DESC NULLS FIRST"])
async def test_order_by_one_nullable_column_puts_nulls_where_postgres_does(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, order: str) -> None:
    """One sort key: the key column's sequence is the legacy one (rows tied on it may
    come in any order), whether the sort was pushed down or done in the proxy."""
    sql = f"SELECT last_seen, email FROM roster_v1 ORDER BY last_seen {order}"
    ours, theirs = await sql_answer(proxy, sql), await sql_answer(emulator, sql)
    assert [row[0] for row in ours["rows"]] == [row[0] for row in theirs["rows"]]
    assert sorted(ours["rows"], key=repr) == sorted(theirs["rows"], key=repr)
    assert None in [row[0] for row in ours["rows"]]  # the data holds nulls to place


@pytest.mark.parametrize(("sql", "rows"), [
    ("SELECT email FROM roster_v1 WHERE node_key = 'cd0354' AND node_key = 'cd0281'", []),
    ("SELECT COUNT(*) FROM roster_v1 WHERE node_key = 'cd0354' AND node_key = 'cd0281'",
     [[0]]),
    ("SELECT node_key, COUNT(*) FROM roster_v1 "
     "WHERE node_key = 'nd025' AND node_key = 'cd0000' GROUP BY node_key", []),
    ("SELECT email FROM roster_v1 "
     "WHERE enrollment_state NOT IN ('enrolled', 'unenrolled', 'graduated', 'static_access')",
     []),
])
async def test_conditions_that_exclude_every_row_answer_without_an_upstream_request(
        proxy: httpx.AsyncClient, upstream_counts: Callable[[], dict[str, int]], sql: str,
        rows: list[list[Any]]) -> None:
    """An empty filter list is never sent: an upstream may read it as "no filter"."""
    assert (await sql_answer(proxy, sql))["rows"] == rows
    assert upstream_counts() == {}
