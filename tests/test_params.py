"""Legacy parameters are validated strictly and become GraphQL variables."""

from __future__ import annotations

import pytest

from legacy_bridge.errors import InvalidParameter
from legacy_bridge.mapping import load_mappings
from legacy_bridge.params import parse
from support import MAPPINGS

ROUTE = next(r for r in load_mappings(MAPPINGS) if r.name == "progress")
PLAN = {"planId": "fd6f0490-2072-43b0-b1d0-7ee82fe96df2"}


def test_defaults_come_from_the_mapping() -> None:
    request = parse(ROUTE, PLAN, {})
    assert (request.page, request.per_page, request.offset) == (1, 50, 0)
    assert dict(request.variables) == {("filter", "learningPlanId"): PLAN["planId"],
                                       ("orderBy",): "EMAIL", ("order",): "ASC"}
    assert request.plan == PLAN["planId"]


def test_offset_of_page_three_of_twenty() -> None:
    assert parse(ROUTE, PLAN, {"page": ["3"], "per_page": ["20"]}).offset == 40


def test_status_list_is_canonical_whatever_the_order_and_spacing() -> None:
    a = parse(ROUTE, PLAN, {"status": ["graduated, enrolled,graduated"]})
    b = parse(ROUTE, PLAN, {"status": ["enrolled,graduated"]})
    assert a.variables[("filter", "enrollmentStatus")] == ["ENROLLED", "GRADUATED"]
    assert a.variables == b.variables


@pytest.mark.parametrize(("query", "message"), [
    ({"page": ["0"]}, "page must be an integer from 1 to 2147483647"),
    ({"per_page": ["101"]}, "per_page must be an integer from 1 to 100"),
    ({"per_page": ["1e2"]}, "per_page must be an integer from 1 to 100"),
    ({"page": ["1", "2"]}, "page may be given only once"),
    ({"sort": ["EMAIL"]}, "sort must be one of: email, last_seen, status"),
    ({"order": [""]}, "order must be one of: asc, desc"),
    ({"status": ["enrolled,,graduated"]}, "status must be a comma-separated list of: "),
])
def test_bad_values_are_invalid_parameter(query: dict[str, list[str]], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        parse(ROUTE, PLAN, query)


@pytest.mark.parametrize("plan", ["fd6f0490", "fd6f0490-2072-43b0-b1d0-7ee82fe96df2x",
                                  "{fd6f0490-2072-43b0-b1d0-7ee82fe96df2}",
                                  "fd6f04902072043b0b1d07ee82fe96df2", "' OR 1=1 --"])
def test_plan_id_must_be_a_uuid(plan: str) -> None:
    with pytest.raises(InvalidParameter, match="planId must be a UUID"):
        parse(ROUTE, {"planId": plan}, {})
