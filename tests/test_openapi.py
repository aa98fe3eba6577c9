"""The OpenAPI description, and schemathesis against it: no 5xx, every answer as described."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_ADMIN_TOKEN, DEMO_COMPANY_TOKEN, DEMO_LEARNER_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.emulator.learning_path import BEN
from legacy_bridge.mapping import load_mappings
from legacy_bridge.openapi import document, item_schema
from support import DATA_API, MAPPINGS

ROUTES = {route.name: route for route in load_mappings(MAPPINGS)}


def test_item_schema_follows_the_field_table_and_graphql_nullability() -> None:
    schema = item_schema(ROUTES["progress"])
    assert list(schema["properties"]) == ["learner_email", "program_key", "program_version",
                                          "stats", "last_seen", "enrolled_at", "graduated_at"]
    assert "graduated_at" not in schema["required"]  # omit_if_null
    assert schema["properties"]["last_seen"] == {"anyOf": [{"type": "string"},
                                                           {"type": "null"}]}
    stats = schema["properties"]["stats"]
    assert stats["properties"]["status"]["enum"] == ["enrolled", "unenrolled", "graduated",
                                                     "static_access"]
    assert stats["required"][-2:] == ["assessment_attempted", "assessment_completed"]


def test_parameters_come_from_the_mapping() -> None:
    operation = document(list(ROUTES.values()))["paths"]["/api/v2/plans/{planId}/users"]["get"]
    by_name = {p["name"]: p for p in operation["parameters"]}
    assert by_name["planId"]["in"] == "path" and by_name["planId"]["required"]
    assert by_name["per_page"]["schema"]["maximum"] == 100
    assert by_name["status"]["explode"] is False
    assert by_name["sort"]["schema"]["enum"] == ["email", "last_seen", "steps_completed",
                                                 "subscribed_at"]


async def test_app_serves_its_description(proxy: httpx.AsyncClient) -> None:
    body = (await proxy.get("/openapi.json")).json()
    assert body["openapi"].startswith("3.1")
    assert set(body["paths"]) == {route.path for route in ROUTES.values()} | {
        DATA_API, "/api/progress", "/api/admin/progress/{learnerId}"}


def fuzz(operation: schemathesis.APIOperation, *excluded: schemathesis.checks.CheckFunction,
         token: str = DEMO_COMPANY_TOKEN) -> None:
    """Positive and negative cases: each must get a documented status and body, no 5xx."""
    auth = {"Authorization": f"Bearer {token}"}

    @settings(max_examples=80, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
           | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=auth, excluded_checks=list(excluded))

    check()


@pytest.mark.parametrize("path", sorted(route.path for route in ROUTES.values()))
def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(
        make_proxy: Callable[..., Starlette], path: str) -> None:
    # negative_data_rejection treats unknown query parameters as invalid, but the
    # legacy API ignored them (contract) and so does the proxy; the 400 for every
    # truly invalid value is pinned in test_routes.
    # A schema-valid request is answered 200, or 404 for a plan id that does not exist.
    config = schemathesis.Config.from_dict({"checks": {"positive_data_acceptance": {
        "expected-statuses": [200, 404]}}})
    api = schemathesis.openapi.from_asgi("/openapi.json", make_proxy(), config=config)
    fuzz(api[path]["GET"], schemathesis.checks.negative_data_rejection)


def test_schemathesis_finds_no_5xx_and_no_schema_valid_body_refused_by_the_data_api(
        make_proxy: Callable[..., Starlette]) -> None:
    # A schema-valid body is text in a "query" key; the description says text
    # outside the SQL grammar is a 400, so 200 and 400 are its accepted answers
    # (401, 403, 413 or 415 for a valid body would be a rejection).
    config = schemathesis.Config.from_dict({"checks": {"positive_data_acceptance": {
        "expected-statuses": [200, 400]}}})
    api = schemathesis.openapi.from_asgi("/openapi.json", make_proxy(), config=config)
    fuzz(api[DATA_API]["POST"])


@pytest.mark.parametrize("path", sorted(route.path for route in ROUTES.values()))
@pytest.mark.parametrize("query", [{"per_page": 100}, {"per_page": 100, "page": 2},
                                   {"per_page": 100, "order": "desc"}])
def test_real_pages_match_the_described_item_schema(
        make_proxy: Callable[..., Starlette], path: str, query: dict[str, object]) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", make_proxy())
    case = api[path]["GET"].Case(path_parameters={"planId": DEMO_PLAN_ID}, query=query)
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
    assert response.json()["results"]  # real records were validated, not an empty page


@pytest.mark.parametrize(("path", "method", "token", "accepted"), [
    ("/api/progress", "GET", DEMO_LEARNER_TOKEN, [200]),
    # a well-formed body names a lesson the course map may lack: 400 unknown_lesson
    ("/api/progress", "POST", DEMO_LEARNER_TOKEN, [200, 400]),
    ("/api/progress", "PUT", DEMO_LEARNER_TOKEN, [200, 400]),
    ("/api/admin/progress/{learnerId}", "GET", DEMO_ADMIN_TOKEN, [200, 404]),
])
def test_schemathesis_finds_no_5xx_on_the_course_progress_routes(
        make_proxy: Callable[..., Starlette], path: str, method: str, token: str,
        accepted: list[int]) -> None:
    # Unknown keys in a body are ignored (contract), as unknown query parameters are.
    config = schemathesis.Config.from_dict({"checks": {"positive_data_acceptance": {
        "expected-statuses": accepted}}})
    api = schemathesis.openapi.from_asgi("/openapi.json", make_proxy(), config=config)
    fuzz(api[path][method], schemathesis.checks.negative_data_rejection, token=token)


def test_real_course_progress_records_match_the_described_schema(
        make_proxy: Callable[..., Starlette]) -> None:
    api = schemathesis.openapi.from_asgi("/openapi.json", make_proxy())
    auth = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
    case = api["/api/admin/progress/{learnerId}"]["GET"].Case(
        path_parameters={"learnerId": BEN}, query={"courseId": 42})
    response = case.call_and_validate(headers=auth)
    assert response.json()[0]["completed"] is True  # a real record was validated
