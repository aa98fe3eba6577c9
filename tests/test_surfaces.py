"""New routes and parameter kinds come from data: a table (and a registry line), no code."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.errors import InvalidParameter, MappingError
from legacy_bridge.mapping import load_mappings
from legacy_bridge.paramtypes import PARAM_TYPES, Declared, ParamType, Variable
from support import MAPPINGS, graphql, legacy

# A fourth legacy route over an API and parameter kinds that exist, with its own
# envelope spelling: nothing but this file is added.
LEARNERS = """
[route]
path = "/api/v2/plans/{planId}/learners"
api = "learning-plan-progress"
endpoint = "/api/public/api/v1/learning-plan-progress/graphql"
operation = "learningPlanProgress"

[route.envelope]
data = "items"
count = "total"
page = "page"
per_page = "per_page"

[params.planId]
from = "path"
type = "uuid"
variable = "filter.learningPlanId"
scope = true

[params.page]
type = "page"

[params.per_page]
type = "per_page"
default = 10
max = 25

[params.order]
type = "enum"
variable = "order"
default = "up"
values = { up = "ASC", down = "DESC" }

[fields]
id = "userId"
"name.first" = "userFirstName"
"name.last" = "userLastName"
steps = "stepsCompleted"
"""

LEARNERS_QUERY = """query($input: LearningPlanProgressInput!) {
  learningPlanProgress(input: $input) {
    totalCount edges { node { userId userFirstName userLastName stepsCompleted } } } }"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    return mappings


async def test_a_new_table_serves_a_fourth_route_with_no_code(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient,
        folder: Path) -> None:
    (folder / "learners.toml").write_text(LEARNERS)
    app = make_proxy(mappings_dir=folder)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        answer = await legacy(proxy, "learners", "page=2&per_page=4&order=down")
        spec = (await proxy.get("/openapi.json")).json()
    upstream = (await graphql(emulator, "learning-plan-progress", LEARNERS_QUERY, {"input": {
        "first": 8, "filter": {"learningPlanId": DEMO_PLAN_ID}, "order": "DESC"}})).json()
    data = upstream["data"]["learningPlanProgress"]
    expected = [{"id": n["userId"], "name": {"first": n["userFirstName"],
                                              "last": n["userLastName"]},
                 "steps": n["stepsCompleted"]} for n in (e["node"] for e in data["edges"][4:])]
    assert answer.status_code == 200
    assert list(answer.json()) == ["data", "count", "page", "per_page"]
    assert answer.json() == {"data": expected, "count": data["totalCount"], "page": 2,
                             "per_page": 4}
    assert "/api/v2/plans/{planId}/learners" in spec["paths"]


@pytest.mark.parametrize(("query", "status"), [("per_page=26", 400), ("order=asc", 400),
                                               ("per_page=25", 200)])
async def test_the_new_routes_parameters_follow_its_table(
        make_proxy: Callable[..., Starlette], folder: Path, query: str, status: int) -> None:
    (folder / "learners.toml").write_text(LEARNERS)
    app = make_proxy(mappings_dir=folder)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        assert (await legacy(proxy, "learners", query)).status_code == status


def _user_ids(param: Declared, raw: str) -> list[str]:
    ids = [part.strip() for part in raw.split(",")]
    if not all(ids) or len(ids) > 50:
        raise InvalidParameter(f"{param.name} must be 1 to 50 comma-separated user ids")
    return sorted(set(ids))


USER_IDS = ParamType(_user_ids,
                     lambda p: {"type": "array", "minItems": 1, "maxItems": 50,
                                "items": {"type": "string"}},
                     "comma-separated user ids", Variable("scalar", is_list=True),
                     list_style=True)


def _with_users_param(folder: Path) -> None:
    table = folder / "assessment-attempts.toml"
    table.write_text(table.read_text().replace("[params.status]", """[params.learners]
type = "user_ids"
variable = "filter.userIds"

[params.status]"""))


async def test_a_parameter_kind_registered_in_one_place_is_usable_from_a_table(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient, folder: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PARAM_TYPES, "user_ids", USER_IDS)
    _with_users_param(folder)
    app = make_proxy(mappings_dir=folder)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        everyone = (await legacy(proxy, "assessment-attempts", "per_page=100")).json()
        chosen = sorted({r["user_key"] for r in everyone["results"]})[:2]
        some = await legacy(proxy, "assessment-attempts",
                            f"per_page=100&learners={','.join(chosen)}")
        bad = await legacy(proxy, "assessment-attempts", "learners=a,,b")
        spec = (await proxy.get("/openapi.json")).json()
    assert some.status_code == 200 and some.json()["results"]
    assert {r["user_key"] for r in some.json()["results"]} == set(chosen)
    assert bad.status_code == 400 and "learners" in bad.json()["error"]["message"]
    described = {p["name"]: p for p in
                 spec["paths"]["/api/v2/plans/{planId}/assessment-attempts"]["get"]["parameters"]}
    assert described["learners"]["schema"]["maxItems"] == 50
    assert described["learners"]["explode"] is False


def test_an_unregistered_parameter_kind_fails_at_load_naming_the_kinds(folder: Path) -> None:
    _with_users_param(folder)
    with pytest.raises(MappingError) as caught:
        load_mappings(folder)
    assert caught.value.key == "params.learners.type"
    assert "uuid" in caught.value.fix and "enum_list" in caught.value.fix


@pytest.mark.parametrize(("old", "new", "problem"), [
    ('data = "items"', 'data = "total"', "items is held by 0 keys"),
    ('count = "total"\n', "", "total is held by 0 keys"),
])
def test_an_envelope_must_hold_each_part_once(folder: Path, old: str, new: str,
                                              problem: str) -> None:
    (folder / "learners.toml").write_text(LEARNERS.replace(old, new))
    with pytest.raises(MappingError) as caught:
        load_mappings(folder)
    assert (caught.value.key, caught.value.problem) == ("route.envelope", problem)


