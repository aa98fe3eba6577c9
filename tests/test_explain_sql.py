"""explain-sql and POST /_bridge/explain: what a SQL statement becomes, and why."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from click.testing import CliRunner

from legacy_bridge.cli import main
from support import ADMIN_TOKEN, MAPPINGS, sql_answer
from test_dataapi import SEED_003_ENROLLED, SEED_003_GRADUATED


def explain_cli(sql: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["explain-sql", sql, "--json",
                                       "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.output)
    return answer


def test_the_graduated_example_says_why_graduated_is_not_pushed_down() -> None:
    answer = explain_cli(SEED_003_GRADUATED)
    assert answer["pushed_down"] == []
    upstream = answer["upstream"]
    assert isinstance(upstream, dict)
    assert "filter" not in upstream["variables"]["input"]
    reasons = " ".join(str(line) for line in answer["in_the_proxy"])  # type: ignore[attr-defined]
    assert "graduatedAt, else completedAt" in reasons and "GRADUATED" in reasons
    assert answer["catalog"] is not None  # nd_title


def test_the_enrolled_example_pushes_down_the_guides_variables() -> None:
    upstream = explain_cli(SEED_003_ENROLLED)["upstream"]
    assert isinstance(upstream, dict)
    assert upstream["variables"] == {"input": {
        "filter": {"enrollmentStatus": ["ENROLLED"]}, "orderBy": "LAST_ACTIVE",
        "order": "ASC", "first": 100}}
    assert "lastActiveAt" in upstream["query"] and "userLastName" not in upstream["query"]


def test_the_text_form_lists_both_sides() -> None:
    result = CliRunner().invoke(main, ["explain-sql", SEED_003_ENROLLED,
                                       "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0
    assert "Pushed down to GraphQL:" in result.output and "In the proxy:" in result.output
    assert "Estimated upstream requests:" in result.output


def test_an_unsupported_statement_exits_non_zero_with_the_code() -> None:
    result = CliRunner().invoke(main, ["explain-sql", "DELETE FROM roster_v1",
                                       "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code != 0
    assert "unsupported_sql" in result.output


async def test_the_admin_page_estimates_requests_from_the_filters_total(
        proxy: httpx.AsyncClient, upstream_counts: Callable[[], dict[str, int]]) -> None:
    answer = await proxy.post("/_bridge/explain", content=SEED_003_ENROLLED, headers={
        "authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "text/plain"})
    assert answer.status_code == 200
    body = answer.json()
    total = await _enrolled(proxy)
    assert body["estimated_upstream_requests"] == str(-(-total // 100))
    assert upstream_counts()["program-progress"] == 2  # the explain's count + ours


async def _enrolled(proxy: httpx.AsyncClient) -> int:
    answer = await sql_answer(proxy, "SELECT COUNT(*) FROM roster_v1 "
                              "WHERE enrollment_state = 'enrolled'")
    count: int = answer["rows"][0][0]
    return count


async def test_the_admin_page_needs_the_admin_token(proxy: httpx.AsyncClient) -> None:
    answer = await proxy.post("/_bridge/explain", content=SEED_003_ENROLLED)
    assert answer.status_code == 401
