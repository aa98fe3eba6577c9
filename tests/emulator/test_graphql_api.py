"""The emulated upstream follows every upstream rule of shared/contract/README.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, empty_plan_id
from support import SPEC, graphql


@dataclass(frozen=True)
class Api:
    name: str
    root: str
    input_type: str
    identity: tuple[str, ...]
    sort_fields: dict[str, str]  # orderBy -> node field it orders by

    def query(self, fields: str) -> str:
        return (f"query Page($input: {self.input_type}!) {{ {self.root}(input: $input) {{ "
                f"totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} "
                f"edges {{ cursor node {{ {fields} }} }} }} }}")


APIS = [
    Api("program-progress", "programProgress", "ProgramProgressInput",
        ("userId", "programKey", "learningPlanId"),
        {"EMAIL": "userEmail", "ENROLLMENT_STATUS": "enrollmentStatus",
         "LAST_ACTIVE": "lastActiveAt", "COMPLETED_PROJECTS": "projectsRequiredCompleted",
         "LEARNING_TIME": "learnerHours", "PROGRAM_TITLE": "programKey"}),
    Api("learning-plan-progress", "learningPlanProgress", "LearningPlanProgressInput",
        ("userId", "learningPlanId"),
        {"EMAIL": "userEmail", "LAST_ACTIVE": "lastActiveAt",
         "STEPS_COMPLETED": "stepsCompleted", "SUBSCRIBED_AT": "subscribedAt"}),
    Api("assessment-progress", "assessmentProgress", "AssessmentProgressInput",
        ("attemptId",),
        {"STARTED_AT": "startedAt", "SUBMITTED_AT": "submittedAt", "EMAIL": "userEmail",
         "SCORE": "score"}),
]
ORDERINGS = [(api, order_by, order) for api in APIS
             for order_by in [None, *api.sort_fields] for order in ("ASC", "DESC")]


async def crawl(client: httpx.AsyncClient, api: Api, fields: str,
                input_: dict[str, Any], first: int) -> tuple[list[dict[str, Any]], int]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        response = await graphql(client, api.name, api.query(fields),
                                 {"input": {**input_, "first": first, "after": after}})
        connection = response.json()["data"][api.root]
        nodes += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes, connection["totalCount"]
        after = connection["pageInfo"]["endCursor"]


@pytest.mark.parametrize(("api", "order_by", "order"), ORDERINGS,
                         ids=[f"{a.name}-{b}-{o}" for a, b, o in ORDERINGS])
async def test_paging_with_after_never_skips_or_repeats(
        emulator: httpx.AsyncClient, api: Api, order_by: str | None, order: str) -> None:
    fields = " ".join({*api.identity, *api.sort_fields.values()})
    input_: dict[str, Any] = {"filter": {"learningPlanId": DEMO_PLAN_ID}, "order": order}
    if order_by:
        input_["orderBy"] = order_by
    nodes, total = await crawl(emulator, api, fields, input_, first=37)
    identities = [tuple(n[f] for f in api.identity) for n in nodes]
    assert len(nodes) == total > 0
    assert len(set(identities)) == total


@pytest.mark.parametrize("api", APIS, ids=lambda a: a.name)
async def test_one_big_page_equals_the_crawl(emulator: httpx.AsyncClient, api: Api) -> None:
    fields = " ".join(api.identity)
    input_ = {"filter": {"learningPlanId": DEMO_PLAN_ID}, "orderBy": next(iter(api.sort_fields))}
    small, _ = await crawl(emulator, api, fields, input_, first=9)
    big, _ = await crawl(emulator, api, fields, input_, first=100)
    assert small == big


def _null_last_key(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)


@pytest.mark.parametrize(("api", "order_by"),
                         [(a, b) for a in APIS for b in a.sort_fields if b != "PROGRAM_TITLE"])
async def test_order_by_sorts_with_nulls_last_ascending_and_first_descending(
        emulator: httpx.AsyncClient, api: Api, order_by: str) -> None:
    field = api.sort_fields[order_by]
    for order in ("ASC", "DESC"):
        input_ = {"filter": {"learningPlanId": DEMO_PLAN_ID}, "orderBy": order_by,
                  "order": order}
        nodes, _ = await crawl(emulator, api, field, input_, first=100)
        values = [n[field] for n in nodes]
        expected = sorted(values, key=_null_last_key, reverse=order == "DESC")
        assert values == expected


async def test_program_title_order_groups_programs_by_title(
        emulator: httpx.AsyncClient) -> None:
    api = APIS[0]
    response = await graphql(emulator, "catalog", "{ catalog { programs { key title } } }")
    titles = {p["key"]: p["title"] for p in response.json()["data"]["catalog"]["programs"]}
    nodes, _ = await crawl(emulator, api, "programKey",
                           {"filter": {"learningPlanId": DEMO_PLAN_ID},
                            "orderBy": "PROGRAM_TITLE"}, first=100)
    seen = [titles[n["programKey"]] for n in nodes]
    assert seen == sorted(seen)


@pytest.mark.parametrize(("api", "filter_", "field", "allowed"), [
    (APIS[0], {"enrollmentStatus": ["GRADUATED", "STATIC_ACCESS"]}, "enrollmentStatus",
     {"GRADUATED", "STATIC_ACCESS"}),
    (APIS[0], {"programKey": ["nd00113"]}, "programKey", {"nd00113"}),
    (APIS[1], {"subscriptionStatus": ["COMPLETED"]}, "subscriptionStatus", {"COMPLETED"}),
    (APIS[2], {"status": ["PASSED"]}, "status", {"PASSED"}),
    (APIS[2], {"programKey": ["nd025", "cd0000"]}, "programKey", {"nd025", "cd0000"}),
])
async def test_filters_narrow_records_and_total_count(
        emulator: httpx.AsyncClient, api: Api, filter_: dict[str, Any], field: str,
        allowed: set[str]) -> None:
    everything, all_total = await crawl(emulator, api, field,
                                        {"filter": {"learningPlanId": DEMO_PLAN_ID}}, 100)
    nodes, total = await crawl(emulator, api, field,
                               {"filter": {"learningPlanId": DEMO_PLAN_ID, **filter_}}, 100)
    assert {n[field] for n in nodes} == allowed
    assert total == len(nodes) == sum(n[field] in allowed for n in everything) < all_total


async def test_user_ids_filter_batches_learners(emulator: httpx.AsyncClient) -> None:
    api = APIS[2]
    everything, _ = await crawl(emulator, api, "userId",
                                {"filter": {"learningPlanId": DEMO_PLAN_ID}}, 100)
    users = sorted({n["userId"] for n in everything})[:5]
    nodes, total = await crawl(emulator, api, "userId",
                               {"filter": {"learningPlanId": DEMO_PLAN_ID, "userIds": users}},
                               100)
    assert {n["userId"] for n in nodes} <= set(users)
    assert total == sum(n["userId"] in users for n in everything)


async def test_learning_plan_filter_keeps_plans_apart(emulator: httpx.AsyncClient) -> None:
    api = APIS[0]
    plan_nodes, plan_total = await crawl(emulator, api, "learningPlanId",
                                         {"filter": {"learningPlanId": DEMO_PLAN_ID}}, 100)
    _, company_total = await crawl(emulator, api, "learningPlanId", {}, 100)
    assert {n["learningPlanId"] for n in plan_nodes} == {DEMO_PLAN_ID}
    assert company_total > plan_total


@pytest.mark.parametrize("first", [0, -1, 101, 1000])
async def test_first_outside_1_to_100_is_a_graphql_error(
        emulator: httpx.AsyncClient, first: int) -> None:
    response = await graphql(emulator, "program-progress", APIS[0].query("userId"),
                             {"input": {"first": first}})
    body = response.json()
    assert body["data"] is None
    assert "first must be between 1 and 100" in body["errors"][0]["message"]


async def test_first_defaults_to_100(emulator: httpx.AsyncClient) -> None:
    response = await graphql(emulator, "program-progress", APIS[0].query("userId"),
                             {"input": {"filter": {"learningPlanId": DEMO_PLAN_ID}}})
    assert len(response.json()["data"]["programProgress"]["edges"]) == 100


async def _first_cursor(client: httpx.AsyncClient, input_: dict[str, Any]) -> str:
    response = await graphql(client, "program-progress", APIS[0].query("userId"),
                             {"input": {**input_, "first": 2}})
    cursor: str = response.json()["data"]["programProgress"]["pageInfo"]["endCursor"]
    return cursor


@pytest.mark.parametrize("tamper", [
    lambda c: c[:-2] + ("AA" if c[-2:] != "AA" else "BB"),
    lambda c: "x" + c,
    lambda c: "not-a-cursor",
    lambda c: c.split(".")[0],
])
async def test_tampered_cursor_is_a_graphql_error(emulator: httpx.AsyncClient, tamper: Any) -> None:
    cursor = await _first_cursor(emulator, {})
    response = await graphql(emulator, "program-progress", APIS[0].query("userId"),
                             {"input": {"first": 2, "after": tamper(cursor)}})
    assert response.json()["data"] is None
    assert "invalid cursor" in response.json()["errors"][0]["message"]


async def test_cursor_is_valid_only_for_its_filter_and_order(
        emulator: httpx.AsyncClient) -> None:
    cursor = await _first_cursor(emulator, {"orderBy": "EMAIL"})
    for other in ({"orderBy": "LAST_ACTIVE"}, {"orderBy": "EMAIL", "order": "DESC"},
                  {"orderBy": "EMAIL", "filter": {"learningPlanId": DEMO_PLAN_ID}}):
        response = await graphql(emulator, "program-progress", APIS[0].query("userId"),
                                 {"input": {**other, "first": 2, "after": cursor}})
        assert response.json()["data"] is None


async def test_page_info_of_first_middle_and_last_pages(emulator: httpx.AsyncClient) -> None:
    api = APIS[1]
    input_ = {"filter": {"learningPlanId": DEMO_PLAN_ID}, "first": 100}
    first = (await graphql(emulator, api.name, api.query("userId"), {"input": input_})).json()
    connection = first["data"][api.root]
    info = connection["pageInfo"]
    assert info["hasNextPage"] is (connection["totalCount"] > 100)
    assert info["hasPreviousPage"] is False
    assert info["startCursor"] == connection["edges"][0]["cursor"]
    assert info["endCursor"] == connection["edges"][-1]["cursor"]
    nodes, total = await crawl(emulator, api, "userId", {"filter": input_["filter"]}, 100)
    assert len(nodes) == total


async def test_empty_plan_has_no_edges_and_null_cursors(emulator: httpx.AsyncClient) -> None:
    for api in APIS:
        response = await graphql(emulator, api.name, api.query(api.identity[0]),
                                 {"input": {"filter": {"learningPlanId": empty_plan_id(SPEC)}}})
        connection = response.json()["data"][api.root]
        assert connection == {"totalCount": 0, "edges": [], "pageInfo": {
            "hasNextPage": False, "hasPreviousPage": False, "startCursor": None,
            "endCursor": None}}


@pytest.mark.parametrize("header", [{}, {"Authorization": "Token wrong"},
                                    {"Authorization": "Bearer demo-company-key"}])
async def test_bad_api_key_is_401(emulator: httpx.AsyncClient, header: dict[str, str]) -> None:
    response = await emulator.post("/api/public/api/v1/program-progress/graphql",
                                   json={"query": "{ __typename }"}, headers=header)
    assert response.status_code == 401
    assert response.json()["errors"]


async def test_invalid_document_is_400_with_errors(emulator: httpx.AsyncClient) -> None:
    response = await graphql(emulator, "program-progress", "{ programProgress { nope } }")
    assert response.status_code == 400
    assert response.json()["errors"]


async def test_bad_variable_is_a_graphql_error(emulator: httpx.AsyncClient) -> None:
    response = await graphql(emulator, "program-progress", APIS[0].query("userId"),
                             {"input": {"orderBy": "SHOE_SIZE"}})
    assert response.json()["errors"]
    assert response.json()["data"] is None


async def test_each_api_serves_exactly_its_own_schema(emulator: httpx.AsyncClient) -> None:
    response = await graphql(emulator, "learning-plan-progress", APIS[0].query("userId"),
                             {"input": {}})
    assert response.status_code == 400


async def test_catalog_lists_programs(emulator: httpx.AsyncClient) -> None:
    response = await graphql(emulator, "catalog", "{ catalog { programs { key title type } } }")
    programs = response.json()["data"]["catalog"]["programs"]
    assert {"key": "nd00113", "title": "Data Analyst", "type": "NANODEGREE"} in programs


async def test_seed_001_learner_is_in_the_demo_plan_as_documented(
        emulator: httpx.AsyncClient) -> None:
    fields = ("userEmail programKey programVersion enrollmentStatus projectsRequiredTotal "
              "projectsRequiredCompleted completionPercentage lastActiveAt enrolledAt")
    nodes, _ = await crawl(emulator, APIS[0], fields,
                           {"filter": {"learningPlanId": DEMO_PLAN_ID}}, 100)
    martinez = [n for n in nodes if n["userEmail"] == "j.martinez@acmecorp.com"
                and n["programKey"] == "nd00113"]
    assert martinez == [{
        "userEmail": "j.martinez@acmecorp.com", "programKey": "nd00113",
        "programVersion": "1.0.0", "enrollmentStatus": "ENROLLED",
        "projectsRequiredTotal": 5, "projectsRequiredCompleted": 3,
        "completionPercentage": 65.0, "lastActiveAt": "2026-03-10T14:30:00Z",
        "enrolledAt": "2025-11-01T09:00:00Z"}]
