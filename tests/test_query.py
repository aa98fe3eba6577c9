"""GraphQL documents are printed from an AST and valid against the upstream schema."""

from __future__ import annotations

from graphql import parse, validate

from legacy_bridge import schemas
from legacy_bridge.mapping import load_mappings
from legacy_bridge.query import input_variables
from legacy_bridge.routes import compile_route
from support import MAPPINGS

ROUTES = {route.name: route for route in load_mappings(MAPPINGS)}


def test_page_query_selects_exactly_the_mapped_fields() -> None:
    compiled = compile_route(ROUTES["users"])
    assert compiled.page.text == (
        "query LegacyUsers($input: LearningPlanProgressInput!) {\n"
        "  learningPlanProgress(input: $input) {\n"
        "    totalCount\n"
        "    pageInfo {\n      hasNextPage\n      endCursor\n    }\n"
        "    edges {\n      cursor\n      node {\n"
        "        userId\n        userEmail\n        userFirstName\n        userLastName\n"
        "        subscriptionStatus\n        subscribedAt\n        unsubscribedAt\n"
        "        completedAt\n        stepsTotal\n        stepsCompleted\n"
        "        lastActiveAt\n      }\n    }\n  }\n}")


def test_walk_query_asks_for_cursors_only() -> None:
    text = compile_route(ROUTES["progress"]).walk.text
    assert "node" not in text and "cursor" in text and "totalCount" in text


def test_every_document_validates_against_its_schema() -> None:
    for route in ROUTES.values():
        compiled = compile_route(route)
        for document in (compiled.page, compiled.walk):
            assert validate(schemas.schema(route.api), parse(document.text)) == []
        for name, join in route.joins.items():
            document = compiled.joins[name]
            assert validate(schemas.schema(join.api), parse(document.text)) == []


def test_variables_nest_dotted_paths_and_add_paging() -> None:
    route = ROUTES["progress"]
    variables = input_variables({("filter", "learningPlanId"): "p",
                                 ("filter", "enrollmentStatus"): ["ENROLLED"],
                                 ("orderBy",): "EMAIL"}, route.connection, 50, "cursor-1")
    assert variables == {"input": {
        "filter": {"learningPlanId": "p", "enrollmentStatus": ["ENROLLED"]},
        "orderBy": "EMAIL", "first": 50, "after": "cursor-1"}}


def test_first_page_sends_no_after() -> None:
    variables = input_variables({}, ROUTES["users"].connection, 10, None)
    assert variables == {"input": {"first": 10}}
