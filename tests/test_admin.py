"""Helping clients leave: explain, deprecation signals, the usage report, admin guard."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette

from legacy_bridge.cli import main
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_COMPANY_TOKEN, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import ADMIN_TOKEN, MAPPINGS, OTHER_PLAN_TOKEN, TWO_PLANS_TOKEN, graphql, legacy

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
IDENTITY = {"progress": (("userEmail", "learner_email"), ("programKey", "program_key")),
            "users": (("userId", "user_key"),),
            "assessment-attempts": (("attemptId", "attempt_id"),)}
API = {"progress": "program-progress", "users": "learning-plan-progress",
       "assessment-attempts": "assessment-progress"}


def legacy_url(route: str, query: str) -> str:
    return f"/api/v2/plans/{DEMO_PLAN_ID}/{route}?{query}"


async def explain(proxy: httpx.AsyncClient, url: str) -> httpx.Response:
    return await proxy.get(f"/_bridge/explain?url={quote(url, safe='')}", headers=ADMIN)


async def follow(emulator: httpx.AsyncClient, route: str, plan: dict[str, Any]) -> list[Any]:
    """Run the explained query as its `pagination` says, against the upstream."""
    paging = plan["pagination"]
    root = plan["query"].split("{")[1].split("(")[0].strip()
    variables = plan["variables"]
    after = paging["start"]["after"]
    if paging["cursor_only"]:
        walk = paging["cursor_only"]
        for first in [walk["first"]] * (walk["requests"] - 1) + [walk["last_first"]]:
            step = {**variables["input"], "first": first}
            if after is not None:
                step["after"] = after
            body = (await graphql(emulator, API[route], paging["cursor_only"]["query"],
                                  {"input": step})).json()
            after = body["data"][root]["edges"][-1]["cursor"]
        variables["input"]["after"] = after
    body = (await graphql(emulator, API[route], plan["query"], variables)).json()
    edges = body["data"][root]["edges"][paging["then"]["drop"]:]
    return [tuple(e["node"][g] for g, _ in IDENTITY[route]) for e in edges]


@pytest.mark.parametrize("route", list(IDENTITY))
@pytest.mark.parametrize("query", ["page=1&per_page=50", "page=3&per_page=70",
                                   "page=2&per_page=15&order=desc"])
async def test_explained_query_returns_the_legacy_page_records(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, route: str, query: str) -> None:
    plan = (await explain(proxy, legacy_url(route, query))).json()
    assert plan["route"] == f"/api/v2/plans/{{planId}}/{route}"
    assert plan["endpoint"].endswith(f"/api/public/api/v1/{API[route]}/graphql")
    items = (await legacy(proxy, route, query)).json()["results"]
    assert await follow(emulator, route, plan) == [
        tuple(item[legacy_key] for _, legacy_key in IDENTITY[route]) for item in items]


async def test_explain_starts_from_a_remembered_cursor_after_a_crawl(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    for page in (1, 2):
        await legacy(proxy, "users", f"page={page}&per_page=40")
    plan = (await explain(proxy, legacy_url("users", "page=3&per_page=40"))).json()
    assert plan["pagination"]["start"]["offset"] == 80
    assert plan["pagination"]["cursor_only_requests"] == 0
    assert plan["pagination"]["upstream_requests"] == 1
    assert plan["variables"]["input"]["after"] == plan["pagination"]["start"]["after"]
    items = (await legacy(proxy, "users", "page=3&per_page=40")).json()["results"]
    assert await follow(emulator, "users", plan) == [(i["user_key"],) for i in items]


async def test_explain_lists_the_field_table_and_the_join(proxy: httpx.AsyncClient) -> None:
    plan = (await explain(proxy, legacy_url("progress", "per_page=5"))).json()
    assert {"legacy": "stats.status", "graphql": "enrollmentStatus",
            "transforms": ["lower"]} in plan["fields"]
    assert plan["joins"]["assessments"]["batch"] == {"variable": "filter.userIds",
                                                     "from": "userId"}
    assert "curl -s -X POST" in plan["curl"] and "$API_KEY" in plan["curl"]


def test_python_snippet_runs_and_returns_the_page(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str],
        make_proxy: Callable[..., Starlette], monkeypatch: pytest.MonkeyPatch) -> None:
    base = serve_http(emulator_app)
    proxy = serve_http(make_proxy(over_http=True, upstream_url=base))
    url = legacy_url("assessment-attempts", "page=4&per_page=45")
    plan = httpx.get(f"{proxy}/_bridge/explain", params={"url": url}, headers=ADMIN).json()
    monkeypatch.setitem(os.environ, "API_KEY", DEMO_API_KEY)
    namespace: dict[str, Any] = {}
    exec(plan["python"], namespace)
    page = httpx.get(proxy + url, headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}).json()
    assert [r["attemptId"] for r in namespace["records"]] == [
        i["attempt_id"] for i in page["results"]]


def test_explain_command_prints_the_plan_from_the_start() -> None:
    result = CliRunner().invoke(main, ["explain", legacy_url("users", "page=3&per_page=50"),
                                       "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0, result.output
    assert '"cursor_only_requests": 1' in result.output
    bad = CliRunner().invoke(main, ["explain", legacy_url("users", "per_page=500"),
                                    "--mappings-dir", str(MAPPINGS)])
    assert bad.exit_code == 1 and "per_page must be an integer" in bad.output


async def test_explain_rejects_what_the_route_would_reject(proxy: httpx.AsyncClient) -> None:
    assert (await explain(proxy, legacy_url("users", "page=0"))).status_code == 400
    assert (await explain(proxy, "/api/v2/nothing")).status_code == 404


# -- deprecation signals ------------------------------------------------------------

async def test_every_legacy_answer_carries_the_configured_deprecation(
        proxy: httpx.AsyncClient) -> None:
    for response in (await legacy(proxy, "users"), await legacy(proxy, "users", "page=0"),
                     await legacy(proxy, "progress", headers={})):
        assert response.headers["deprecation"] == "@1767225600"  # 2026-01-01T00:00:00Z
    assert "deprecation" not in (await proxy.get("/healthz")).headers


async def test_sunset_and_link_headers_follow_the_mapping(
        tmp_path: Path, make_proxy: Callable[..., Starlette]) -> None:
    folder = tmp_path / "mappings"
    folder.mkdir()
    for path in MAPPINGS.glob("*.toml"):
        (folder / path.name).write_text(path.read_text().replace(
            "# sunset = 2027-06-30T00:00:00Z", "sunset = 2027-06-30T00:00:00Z").replace(
            "# link =", "link ="))
    app = make_proxy(mappings_dir=folder)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        response = await legacy(proxy, "assessment-attempts", "per_page=1")
    assert response.headers["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert response.headers["link"] == (
        '<https://docs.example.com/migrating-from-learner-progress-v2>; rel="deprecation"')


# -- usage report ---------------------------------------------------------------------

async def test_usage_counts_are_exact_after_a_mix_of_clients(
        proxy: httpx.AsyncClient) -> None:
    for _ in range(3):
        await legacy(proxy, "users", "per_page=5")
    await legacy(proxy, "users", "status=completed&page=2",
                 headers={"Authorization": f"Bearer {TWO_PLANS_TOKEN}"})
    await legacy(proxy, "progress", "status=graduated&per_page=100",
                 headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
    await legacy(proxy, "users", "page=0")  # rejected: not usage
    await legacy(proxy, "users", headers={"Authorization": f"Bearer {OTHER_PLAN_TOKEN}"})
    rows = (await proxy.get("/_bridge/usage.json", headers=ADMIN)).json()
    counts = {(r["client"], r["route"], r["kind"], r["name"]): r["count"] for r in rows}
    assert counts[("demo-plan", "users", "request", "")] == 3
    assert counts[("demo-plan", "users", "param", "per_page")] == 3
    assert counts[("demo-plan", "users", "field", "learner_email")] == 3
    assert ("demo-plan", "users", "field", "completed_at") in counts  # some had one
    assert counts[("two-plans", "users", "param", "status")] == 1
    assert counts[("two-plans", "users", "param", "page")] == 1
    assert counts[("demo-company", "progress", "field", "graduated_at")] == 1
    assert counts[("demo-company", "progress", "field", "stats.assessment_completed")] == 1
    assert ("other-plan", "users", "request", "") not in counts  # 403: not served
    assert sum(c for (_, _, kind, _), c in counts.items() if kind == "request") == 5
    assert all(r["last_seen"].endswith("Z") for r in rows)


async def test_usage_page_and_command_show_the_same_rows(
        proxy: httpx.AsyncClient, tmp_path: Path) -> None:
    await legacy(proxy, "users", "per_page=5")
    page = await proxy.get("/_bridge/usage", headers=ADMIN)
    assert page.headers["content-type"].startswith("text/html")
    assert '<section class=client id="client-demo-plan">' in page.text
    assert "<tr><td>users</td><td class=n>1</td><td>per_page <small>(1)</small>" in page.text
    assert "http" not in page.text.split("<body>")[1].replace('href="usage.json"', "")
    result = CliRunner().invoke(main, ["usage", "--store-url",
                                       f"sqlite:///{tmp_path}/store.sqlite3"])
    assert result.exit_code == 0
    assert any(line.split()[:3] == ["demo-plan", "users", "request"]
               for line in result.output.splitlines())


@pytest.mark.parametrize("path", ["/_bridge/usage", "/_bridge/usage.json",
                                  "/_bridge/explain?url=%2Fapi"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"},
                                     {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"},
                                     {"Authorization": f"Token {ADMIN_TOKEN}"}])
async def test_bridge_pages_refuse_legacy_tokens_and_no_token(
        proxy: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    response = await proxy.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_bridge_pages_stay_shut_without_an_admin_token(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(admin_token=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        response = await proxy.get("/_bridge/usage.json", headers=ADMIN)
    assert response.status_code == 401
    assert "BRIDGE_ADMIN_TOKEN" in response.json()["error"]["message"]
