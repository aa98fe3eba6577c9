"""The emulated legacy v2 API answers as shared/contract/legacy-v2.md describes."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, empty_plan_id, plan_ids
from support import PLAN_AUTH, SEED_001_ITEM, SPEC, graphql, legacy

OTHER_PLAN = plan_ids(SPEC)[1]
COMPANY_AUTH = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}

PROGRESS_KEYS = ["learner_email", "program_key", "program_version", "stats", "last_seen",
                 "enrolled_at"]
PROGRESS_STATS_KEYS = ["status", "total_projects", "total_projects_completed",
                       "perc_concepts_completed", "assessment_attempted",
                       "assessment_completed"]
USER_KEYS = ["user_key", "learner_email", "first_name", "last_name", "status",
             "subscribed_at", "unsubscribed_at", "completed_at", "stats", "last_seen"]
ATTEMPT_KEYS = ["attempt_id", "user_key", "learner_email", "assessment_key",
                "assessment_title", "program_key", "attempt_number", "status", "score",
                "passing_score", "started_at", "submitted_at", "graded_at"]


async def crawl(client: httpx.AsyncClient, route: str, query: str = "",
                per_page: int = 100) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        sep = "&" if query else ""
        body = (await legacy(client, route, f"{query}{sep}page={page}&per_page={per_page}"))
        data = body.json()
        items += data["results"]
        if page * per_page >= data["total"]:
            assert len(items) == data["total"]
            return items
        page += 1


async def test_seed_001_item_matches_the_documented_before_rest_item(
        emulator: httpx.AsyncClient) -> None:
    items = await crawl(emulator, "progress")
    martinez = [i for i in items if i["learner_email"] == "j.martinez@acmecorp.com"
                and i["program_key"] == "nd00113"]
    assert len(martinez) == 1
    item = martinez[0]
    joined = {k: item["stats"].pop(k) for k in ("assessment_attempted", "assessment_completed")}
    assert item == SEED_001_ITEM
    assert list(item) == PROGRESS_KEYS
    assert all(isinstance(v, int) for v in joined.values())


async def test_envelope_has_results_total_page_per_page_with_defaults(
        emulator: httpx.AsyncClient) -> None:
    body = (await legacy(emulator, "progress")).json()
    assert list(body) == ["results", "total", "page", "per_page"]
    assert (body["page"], body["per_page"], len(body["results"])) == (1, 50, 50)


async def test_progress_items_keep_contract_key_order_and_omit_null_graduated_at(
        emulator: httpx.AsyncClient) -> None:
    items = await crawl(emulator, "progress")
    for item in items:
        graduated = item["stats"]["status"] == "graduated"
        assert list(item) == PROGRESS_KEYS + (["graduated_at"] if graduated else [])
        assert list(item["stats"]) == PROGRESS_STATS_KEYS
        assert isinstance(item["stats"]["perc_concepts_completed"], float)
    assert any(i["last_seen"] is None for i in items)


async def test_users_items_omit_null_unsubscribed_and_completed_at(
        emulator: httpx.AsyncClient) -> None:
    items = await crawl(emulator, "users")
    for item in items:
        present = [k for k in USER_KEYS if k in item]
        assert list(item) == present
        assert ("unsubscribed_at" in item) == (item["status"] == "unsubscribed")
        assert ("completed_at" in item) == (item["status"] == "completed")
        assert list(item["stats"]) == ["steps_total", "steps_completed"]
    assert {i["status"] for i in items} == {"subscribed", "unsubscribed", "completed"}


async def test_assessment_attempts_keep_nulls_and_lower_case_status(
        emulator: httpx.AsyncClient) -> None:
    items = await crawl(emulator, "assessment-attempts")
    assert all(list(i) == ATTEMPT_KEYS for i in items)
    assert {i["status"] for i in items} == {"in_progress", "submitted", "passed", "failed"}
    assert any(i["program_key"] is None for i in items)
    assert all(i["score"] is None for i in items if i["status"] in ("in_progress", "submitted"))


@pytest.mark.parametrize(("route", "sort", "field", "order_by", "api", "root"), [
    ("progress", "last_seen", "lastActiveAt", "LAST_ACTIVE", "program-progress",
     "programProgress"),
    ("users", "steps_completed", "stepsCompleted", "STEPS_COMPLETED", "learning-plan-progress",
     "learningPlanProgress"),
    ("assessment-attempts", "score", "score", "SCORE", "assessment-progress",
     "assessmentProgress"),
])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_legacy_order_is_the_upstream_order(
        emulator: httpx.AsyncClient, route: str, sort: str, field: str, order_by: str,
        api: str, root: str, order: str) -> None:
    items = await crawl(emulator, route, f"sort={sort}&order={order}", per_page=33)
    identity = "userId" if api != "assessment-progress" else "attemptId"
    legacy_key = "user_key" if identity == "userId" else "attempt_id"
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        query = (f"query($input: {root[0].upper()}{root[1:]}Input!) {{ {root}(input: $input) "
                 f"{{ pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {identity} }} }} }} }}")
        variables = {"input": {"first": 100, "after": after, "orderBy": order_by,
                               "order": order.upper(),
                               "filter": {"learningPlanId": DEMO_PLAN_ID}}}
        connection = (await graphql(emulator, api, query, variables)).json()["data"][root]
        nodes += [e["node"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    if route == "progress":  # /progress items carry no user id: compare e-mails
        emails = await crawl(emulator, "users")
        by_id = {u["user_key"]: u["learner_email"] for u in emails}
        assert [i["learner_email"] for i in items] == [by_id[n["userId"]] for n in nodes]
    else:
        assert [i[legacy_key] for i in items] == [n[identity] for n in nodes]


async def test_status_filter_accepts_a_list_with_spaces_after_commas(
        emulator: httpx.AsyncClient) -> None:
    items = await crawl(emulator, "progress", "status=graduated,%20static_access")
    assert {i["stats"]["status"] for i in items} == {"graduated", "static_access"}
    everything = await crawl(emulator, "progress")
    assert len(items) == sum(i["stats"]["status"] in ("graduated", "static_access")
                             for i in everything)


async def test_assessment_join_counts_distinct_assessments_in_program_and_plan(
        emulator: httpx.AsyncClient) -> None:
    attempts = await crawl(emulator, "assessment-attempts")
    attempted: dict[tuple[str, str], set[str]] = defaultdict(set)
    passed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in attempts:
        if a["program_key"] is None:
            continue
        key = (a["learner_email"], a["program_key"])
        attempted[key].add(a["assessment_key"])
        if a["status"] == "passed":
            passed[key].add(a["assessment_key"])
    items = await crawl(emulator, "progress")
    for item in items:
        key = (item["learner_email"], item["program_key"])
        assert item["stats"]["assessment_attempted"] == len(attempted[key])
        assert item["stats"]["assessment_completed"] == len(passed[key])
    assert any(i["stats"]["assessment_completed"] > 0 for i in items)


async def test_page_past_the_end_is_empty_with_the_total(emulator: httpx.AsyncClient) -> None:
    body = (await legacy(emulator, "users", "page=999&per_page=100")).json()
    assert body["results"] == []
    assert body["total"] > 0
    assert (body["page"], body["per_page"]) == (999, 100)


async def test_empty_plan_answers_an_empty_page(emulator: httpx.AsyncClient) -> None:
    response = await legacy(emulator, "progress", plan=empty_plan_id(SPEC),
                            headers=COMPANY_AUTH)
    assert response.json() == {"results": [], "total": 0, "page": 1, "per_page": 50}


def _error(status: int, code: str) -> dict[str, Any]:
    return {"status": status, "code": code}


@pytest.mark.parametrize("query", [
    "page=0", "page=-1", "page=+1", "page=1.0", "page=%201", "page=", "page=abc",
    "page=2147483648", "per_page=0", "per_page=101", "per_page=", "per_page=5&per_page=6",
    "page=1&page=1", "status=ENROLLED", "status=enrolled,", "status=", "status=bogus",
    "sort=EMAIL", "sort=nope", "sort=", "order=DESC", "order=up", "order=",
])
async def test_invalid_parameters_are_400(emulator: httpx.AsyncClient, query: str) -> None:
    response = await legacy(emulator, "progress", query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert {k: error[k] for k in ("status", "code")} == _error(400, "invalid_parameter")
    assert error["message"]


async def test_largest_page_is_accepted(emulator: httpx.AsyncClient) -> None:
    response = await legacy(emulator, "progress", "page=2147483647")
    assert response.status_code == 200
    assert response.json()["results"] == []


async def test_unknown_parameters_are_ignored(emulator: httpx.AsyncClient) -> None:
    response = await legacy(emulator, "progress", "fields=all&per_page=3")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Token demo-plan-token"}])
async def test_missing_or_unknown_token_is_401(emulator: httpx.AsyncClient,
                                               headers: dict[str, str]) -> None:
    response = await legacy(emulator, "progress", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_token_of_another_plan_is_403(emulator: httpx.AsyncClient) -> None:
    response = await legacy(emulator, "users", plan=OTHER_PLAN)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_company_token_reads_every_plan(emulator: httpx.AsyncClient) -> None:
    response = await legacy(emulator, "users", plan=OTHER_PLAN, headers=COMPANY_AUTH)
    assert response.status_code == 200


async def test_non_uuid_plan_is_400(emulator: httpx.AsyncClient) -> None:
    response = await legacy(emulator, "progress", plan="not-a-uuid")
    assert response.status_code == 400


@pytest.mark.parametrize(("plan", "query", "headers", "status"), [
    ("not-a-uuid", "", {}, 401),  # the token is checked before parameters
    ("not-a-uuid", "page=0", PLAN_AUTH, 400),
    (OTHER_PLAN, "page=0", PLAN_AUTH, 400),  # parameters before plan scope
])
async def test_which_error_wins(emulator: httpx.AsyncClient, plan: str, query: str,
                                headers: dict[str, str], status: int) -> None:
    response = await legacy(emulator, "progress", query, plan=plan, headers=headers)
    assert response.status_code == status


async def test_unknown_route_and_trailing_slash_are_404(emulator: httpx.AsyncClient) -> None:
    for route in ("nope", "progress/"):
        response = await legacy(emulator, route)
        assert response.status_code == 404
        assert response.json() == {"error": {"status": 404, "code": "not_found",
                                              "message": "no such route"}}


async def test_other_methods_are_405_with_allow_get(emulator: httpx.AsyncClient) -> None:
    response = await legacy(emulator, "progress", method="POST")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"
