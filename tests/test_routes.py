"""The three legacy routes through the proxy, against the emulator's own legacy v2 API.

The emulator's legacy side is the reference: a legacy client must not be able
to tell the proxy from it.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, empty_plan_id
from legacy_bridge.emulator.store import ASSESSMENT_PROGRESS
from support import OTHER_PLAN, OTHER_PLAN_TOKEN, SEED_001_ITEM, SPEC, TWO_PLANS_TOKEN, legacy

ROUTES = ["progress", "users", "assessment-attempts"]
API_OF = {"progress": "program-progress", "users": "learning-plan-progress",
          "assessment-attempts": "assessment-progress"}
COMPANY_AUTH = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}


async def both(proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, route: str,
               query: str = "", **kwargs: Any) -> tuple[httpx.Response, httpx.Response]:
    return (await legacy(proxy, route, query, **kwargs),
            await legacy(emulator, route, query, **kwargs))


async def assert_same(proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, route: str,
                      query: str = "", **kwargs: Any) -> httpx.Response:
    ours, theirs = await both(proxy, emulator, route, query, **kwargs)
    assert ours.status_code == theirs.status_code
    assert ours.json() == theirs.json()
    assert list(ours.json()) == list(theirs.json())
    assert ours.content == theirs.content  # key order and float spelling too
    return ours


# -- the golden example -------------------------------------------------------

async def test_seed_001_item_is_the_documented_before_rest_item(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    page, found = 1, []
    while not found:
        body = (await legacy(proxy, "progress", f"page={page}&per_page=100")).json()
        assert body["results"], "j.martinez not found"
        found = [i for i in body["results"] if i["learner_email"] == "j.martinez@acmecorp.com"
                 and i["program_key"] == "nd00113"]
        page += 1
    item = found[0]
    joined = {k: item["stats"].pop(k) for k in ("assessment_attempted", "assessment_completed")}
    assert item == SEED_001_ITEM
    assert list(item) == ["learner_email", "program_key", "program_version", "stats",
                          "last_seen", "enrolled_at"]
    reference = (await legacy(emulator, "progress", f"page={page - 1}&per_page=100")).json()
    theirs = next(i for i in reference["results"]
                  if i["learner_email"] == "j.martinez@acmecorp.com")
    assert joined == {k: theirs["stats"][k] for k in joined}


# -- full crawls equal the legacy API ------------------------------------------

@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("per_page", [1, 7, 50, 100])
async def test_sequential_crawl_equals_the_legacy_api_page_by_page(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, route: str,
        per_page: int, upstream_counts: Callable[[], dict[str, int]]) -> None:
    page = 1
    while True:
        body = (await assert_same(proxy, emulator, route,
                                  f"page={page}&per_page={per_page}")).json()
        if page * per_page >= body["total"]:
            break
        page += 1
    assert upstream_counts()[API_OF[route]] == page  # exactly one request per page


@pytest.mark.parametrize(("route", "query"), [
    ("progress", "status=graduated,%20static_access"),
    ("progress", "sort=last_seen&order=desc"),
    ("progress", "sort=program"),
    ("progress", "sort=learning_time&order=desc&status=enrolled"),
    ("progress", "sort=projects_completed"),
    ("progress", "sort=status&order=desc"),
    ("users", "status=completed,unsubscribed&sort=steps_completed"),
    ("users", "sort=last_seen&order=desc"),
    ("users", "sort=subscribed_at"),
    ("assessment-attempts", "status=passed&sort=score&order=desc"),
    ("assessment-attempts", "sort=submitted_at"),
    ("assessment-attempts", "sort=email&order=desc"),
    ("assessment-attempts", "status=in_progress,submitted,passed,failed"),
])
async def test_status_sort_and_order_equal_the_legacy_api(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, route: str, query: str) -> None:
    page = 1
    while True:
        body = (await assert_same(proxy, emulator, route,
                                  f"{query}&page={page}&per_page=45")).json()
        if page * 45 >= body["total"]:
            return
        page += 1


async def test_default_page_and_per_page(proxy: httpx.AsyncClient,
                                         emulator: httpx.AsyncClient) -> None:
    body = (await assert_same(proxy, emulator, "users")).json()
    assert (body["page"], body["per_page"], len(body["results"])) == (1, 50, 50)


async def test_page_past_the_end_is_empty_after_one_request(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    body = (await assert_same(proxy, emulator, "users", "page=900&per_page=100")).json()
    assert body["results"] == [] and body["total"] > 0
    assert upstream_counts()["learning-plan-progress"] == 1


async def test_largest_page_number_is_empty_not_too_deep(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    await assert_same(proxy, emulator, "progress", "page=2147483647")


async def test_empty_plan_answers_an_empty_page(proxy: httpx.AsyncClient,
                                                emulator: httpx.AsyncClient) -> None:
    response = await assert_same(proxy, emulator, "progress", plan=empty_plan_id(SPEC),
                                 headers=COMPANY_AUTH)
    assert response.json() == {"results": [], "total": 0, "page": 1, "per_page": 50}


# -- upstream request counts ------------------------------------------------------

@pytest.mark.parametrize(("page", "per_page"), [(2, 50), (3, 50), (4, 50), (7, 30), (2, 100),
                                                (5, 100), (11, 7), (40, 7)])
async def test_cold_page_walks_with_cursor_only_requests(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, page: int, per_page: int,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    await assert_same(proxy, emulator, "assessment-attempts", f"page={page}&per_page={per_page}")
    skip = (page - 1) * per_page
    walk = math.ceil(max(0, skip + per_page - 100) / 100)
    assert upstream_counts()["assessment-progress"] == walk + 1 <= math.ceil(skip / 100) + 1


async def test_cold_page_that_fits_one_upstream_page_costs_one_request(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    await assert_same(proxy, emulator, "users", "page=3&per_page=20")
    assert upstream_counts()["learning-plan-progress"] == 1


async def test_reading_backwards_reuses_checkpoints(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    for page in (1, 2, 3, 4):
        await assert_same(proxy, emulator, "assessment-attempts", f"page={page}&per_page=100")
    for page in (3, 2, 1):
        await assert_same(proxy, emulator, "assessment-attempts", f"page={page}&per_page=100")
    assert upstream_counts()["assessment-progress"] == 7


async def test_join_is_one_batched_query_per_page_of_learners(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, emulator_app: Starlette,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    store = emulator_app.state.store
    expected_join_requests = 0
    for page in (1, 2, 3):
        await assert_same(proxy, emulator, "progress", f"page={page}&per_page=50")
        log = [r for r in (await emulator.get("/_emulator/requests")).json()["requests"]
               if r["api"] == "assessment-progress"]
        users = log[-1]["variables"]["input"]["filter"]["userIds"]
        attempts = store.count(ASSESSMENT_PROGRESS, {"learningPlanId": DEMO_PLAN_ID,
                                                     "userIds": users})
        expected_join_requests += max(1, math.ceil(attempts / 100))
    assert upstream_counts()["program-progress"] == 3
    assert upstream_counts()["assessment-progress"] == expected_join_requests


async def test_identical_concurrent_requests_are_sent_upstream_once(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    await emulator.post("/_emulator/latency", json={"ms": 100})
    answers = await asyncio.gather(*(legacy(proxy, "users", "per_page=10") for _ in range(5)))
    assert len({a.content for a in answers}) == 1
    assert upstream_counts()["learning-plan-progress"] == 1


async def test_refused_checkpoint_cursor_is_dropped_and_walked_again(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    app = make_proxy()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        first = (await legacy(proxy, "users", "page=1&per_page=10")).json()
        checkpoints = app.state.bridge.checkpoints
        (query,) = checkpoints._queries.keys()
        await checkpoints.store(query, 10, "forged-cursor")
        ours, theirs = await both(proxy, emulator, "users", "page=2&per_page=10")
    assert ours.json() == theirs.json() and ours.json()["results"] != first["results"]
    # page 1, the refused cursor, then page 2 walked from the start in one request
    assert upstream_counts()["learning-plan-progress"] == 3


async def test_deep_page_past_the_walk_cap_is_page_too_deep(
        make_proxy: Callable[..., Starlette], upstream_counts: Callable[[], dict[str, int]],
) -> None:
    app = make_proxy(max_walk_requests=2)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        deep = await legacy(proxy, "assessment-attempts", "page=5&per_page=100")
        beyond = await legacy(proxy, "assessment-attempts", "page=90000&per_page=100")
    assert deep.status_code == 400
    error = deep.json()["error"]
    assert error["code"] == "page_too_deep" and "GraphQL API" in error["message"]
    assert beyond.status_code == 200 and beyond.json()["results"] == []
    assert upstream_counts()["assessment-progress"] == 2  # one probe each


# -- auth --------------------------------------------------------------------------

@pytest.mark.parametrize(("token", "plan", "status"), [
    (DEMO_PLAN_TOKEN, DEMO_PLAN_ID, 200),
    (DEMO_PLAN_TOKEN, OTHER_PLAN, 403),
    (OTHER_PLAN_TOKEN, OTHER_PLAN, 200),
    (OTHER_PLAN_TOKEN, DEMO_PLAN_ID, 403),
    (TWO_PLANS_TOKEN, DEMO_PLAN_ID, 200),
    (TWO_PLANS_TOKEN, OTHER_PLAN, 200),
    (TWO_PLANS_TOKEN, empty_plan_id(SPEC), 403),
    (DEMO_COMPANY_TOKEN, OTHER_PLAN, 200),
    (DEMO_COMPANY_TOKEN, empty_plan_id(SPEC), 200),
])
@pytest.mark.parametrize("route", ROUTES)
async def test_auth_matrix(proxy: httpx.AsyncClient, route: str, token: str, plan: str,
                           status: int) -> None:
    response = await legacy(proxy, route, plan=plan,
                            headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": f"Token {DEMO_PLAN_TOKEN}"},
                                     {"Authorization": "Bearer "}])
async def test_missing_or_unknown_token_is_401_like_the_legacy_api(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        headers: dict[str, str]) -> None:
    response = await assert_same(proxy, emulator, "progress", headers=headers)
    assert response.status_code == 401


async def test_passthrough_forwards_the_bearer_value_as_the_upstream_key(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(auth_mode="passthrough")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        ok = await legacy(proxy, "users", headers={"Authorization": "Bearer demo-company-key"})
        wrong = await legacy(proxy, "users", headers={"Authorization": "Bearer wrong-key"})
    assert ok.status_code == 200
    # the client's own key was refused: its fault, as the old API said (not the proxy's 502)
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "unauthorized"
    assert "wrong-key" not in wrong.text


# -- errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "page=0", "page=-1", "page=+1", "page=1.0", "page=%201", "page=", "page=abc",
    "page=2147483648", "per_page=0", "per_page=101", "per_page=", "per_page=5&per_page=6",
    "page=1&page=1", "status=ENROLLED", "status=enrolled,", "status=", "status=bogus",
    "sort=EMAIL", "sort=nope", "sort=", "order=DESC", "order=up", "order=",
])
@pytest.mark.parametrize("route", ["progress", "assessment-attempts"])
async def test_invalid_parameters_are_the_legacy_400_and_never_sent_upstream(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, route: str, query: str,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    response = await assert_same(proxy, emulator, route, query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameter"
    assert upstream_counts() == {}


@pytest.mark.parametrize(("plan", "query", "headers"), [
    ("not-a-uuid", "", {}),
    ("not-a-uuid", "page=0", None),
    ("not-a-uuid", "", None),
    (OTHER_PLAN, "page=0", None),
    (OTHER_PLAN, "", None),
    ("FD6F0490-2072-43B0-B1D0-7EE82FE96DF2", "", None),
])
async def test_which_error_wins_matches_the_legacy_api(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, plan: str, query: str,
        headers: dict[str, str] | None, upstream_counts: Callable[[], dict[str, int]]) -> None:
    response = await assert_same(proxy, emulator, "progress", query, plan=plan, headers=headers)
    assert response.status_code in (400, 401, 403)
    assert upstream_counts() == {}


async def test_unknown_parameters_are_ignored(proxy: httpx.AsyncClient,
                                              emulator: httpx.AsyncClient) -> None:
    await assert_same(proxy, emulator, "users", "fields=all&per_page=3&x=")


@pytest.mark.parametrize("route", ["nope", "progress/", "progress/extra"])
async def test_unknown_route_and_trailing_slash_are_404(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, route: str) -> None:
    response = await assert_same(proxy, emulator, route)
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405_with_allow_get(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, method: str) -> None:
    ours, theirs = await both(proxy, emulator, "users", method=method)
    assert ours.status_code == theirs.status_code == 405
    assert ours.headers["allow"] == theirs.headers["allow"] == "GET"
    assert ours.json() == theirs.json()


@pytest.mark.parametrize(("fault", "count", "status", "code"), [
    ("http_500", 1, 502, "upstream_error"),
    ("http_502", 3, 502, "upstream_error"),  # 3: more than the 2 retries
    ("http_503", 3, 502, "upstream_error"),
    ("http_504", 3, 502, "upstream_error"),
    ("http_401", 1, 502, "upstream_error"),
    ("malformed_json", 1, 502, "upstream_error"),
    ("graphql_error", 1, 502, "upstream_error"),
    ("http_429", 1, 429, "rate_limited"),
])
async def test_upstream_faults_get_the_contract_status_then_recover(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, fault: str, count: int,
        status: int, code: str) -> None:
    await emulator.post("/_emulator/faults", json={"kind": fault, "count": count})
    failed = await legacy(proxy, "users")
    assert failed.status_code == status
    assert failed.json()["error"]["code"] == code
    assert "emulated" not in failed.text and "resolver" not in failed.text
    if status == 429:
        assert failed.headers["retry-after"] == "7"
    assert (await legacy(proxy, "users")).status_code == 200


def test_upstream_timeout_is_504_and_a_dropped_connection_502(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str],
        make_proxy: Callable[..., Starlette]) -> None:
    base = serve_http(emulator_app)
    proxy_base = serve_http(make_proxy(over_http=True, upstream_url=base,
                                       upstream_timeout=0.5))
    with httpx.Client(base_url=proxy_base, headers={
            "Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}) as client:
        route = f"/api/v2/plans/{DEMO_PLAN_ID}/users"
        httpx.post(f"{base}/_emulator/faults", json={"kind": "timeout", "timeout_seconds": 3})
        timed_out = client.get(route)
        httpx.post(f"{base}/_emulator/faults", json={"kind": "drop", "count": 3})
        dropped = client.get(route)
        recovered = client.get(route)
    assert (timed_out.status_code, timed_out.json()["error"]["code"]) == (504,
                                                                            "upstream_timeout")
    assert (dropped.status_code, dropped.json()["error"]["code"]) == (502, "upstream_error")
    assert recovered.status_code == 200


async def test_no_token_or_key_is_echoed_in_error_bodies(proxy: httpx.AsyncClient,
                                                         emulator: httpx.AsyncClient) -> None:
    await emulator.post("/_emulator/faults", json={"kind": "http_401"})
    responses = [await legacy(proxy, "users"),
                 await legacy(proxy, "users", plan=OTHER_PLAN),
                 await legacy(proxy, "users", "page=x")]
    for response in responses:
        assert DEMO_PLAN_TOKEN not in response.text
        assert "demo-company-key" not in response.text


async def test_oversized_url_is_400_and_never_sent_upstream(
        proxy: httpx.AsyncClient, upstream_counts: Callable[[], dict[str, int]]) -> None:
    response = await legacy(proxy, "users", "x=" + "a" * 5000)
    assert response.status_code == 400
    assert response.json()["error"] == {"status": 400, "code": "invalid_parameter",
                                         "message": "the request URL is too long"}
    assert upstream_counts() == {}


async def test_oversized_headers_are_400(proxy: httpx.AsyncClient) -> None:
    response = await legacy(proxy, "users", headers={
        "Authorization": f"Bearer {DEMO_PLAN_TOKEN}", "X-Padding": "p" * 9000})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "the request headers are too large"


# -- one proxy, many queries: checkpoints never cross variables -----------------------

# (plan, query) variants read through one proxy, page after page, interleaved
INTERLEAVED = [
    (DEMO_PLAN_ID, ""),
    (OTHER_PLAN, ""),
    (DEMO_PLAN_ID, "status=completed"),
    (DEMO_PLAN_ID, "status=subscribed,unsubscribed"),
    (DEMO_PLAN_ID, "sort=last_seen"),
    (DEMO_PLAN_ID, "sort=last_seen&order=desc"),
    (OTHER_PLAN, "sort=steps_completed&order=desc"),
]


@pytest.mark.parametrize("bound_cursors", [True, False],
                         ids=["upstream-refuses-foreign-cursors", "upstream-trusts-cursors"])
async def test_interleaved_plans_filters_and_sorts_cost_one_request_per_page(
        make_emulator: Callable[..., Starlette], tokens_file: Any, tmp_path: Any,
        bound_cursors: bool) -> None:
    """Each query keeps its own checkpoints: a cursor from one plan, filter or
    sort is never replayed under another, even by an upstream that would accept it."""
    from pydantic import SecretStr

    from legacy_bridge.app import create_app
    from legacy_bridge.emulator.app import DEMO_API_KEY
    from legacy_bridge.settings import Settings
    from support import MAPPINGS

    upstream = make_emulator(bound_cursors=bound_cursors)
    transport = httpx.ASGITransport(app=upstream)
    app = create_app(Settings(upstream_url="http://upstream",
                              upstream_api_key=SecretStr(DEMO_API_KEY),
                              tokens_file=tokens_file, mappings_dir=MAPPINGS,
                              store_url=f"sqlite:///{tmp_path}/store.sqlite3"), transport)
    async with (httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://proxy") as proxy,
                httpx.AsyncClient(transport=transport, base_url="http://upstream") as old):
        reads = 0
        for page in (1, 2, 3):
            for plan, query in INTERLEAVED:
                url = f"{query}&page={page}&per_page=15".lstrip("&")
                ours = await legacy(proxy, "users", url, plan=plan, headers=COMPANY_AUTH)
                theirs = await legacy(old, "users", url, plan=plan, headers=COMPANY_AUTH)
                assert ours.status_code == 200
                assert ours.content == theirs.content, (plan, url)
                reads += 1
        assert dict(upstream.state.controls.counts) == {"learning-plan-progress": reads}


# -- which error wins, with no token at all ---------------------------------------

@pytest.mark.parametrize(("path", "method", "status"), [
    ("/api/v2/plans/{plan}/nope", "GET", 404),
    ("/api/v2/plans/{plan}/users/", "GET", 404),
    ("/api/v2/plans/not-a-uuid/nope", "GET", 404),
    ("/api/v2/plans/{plan}/users", "POST", 405),
    ("/api/v2/plans/not-a-uuid/users", "DELETE", 405),
    ("/api/v2/plans/{plan}/users?page=0", "PUT", 405),
    ("/api/v2/plans/{plan}/users", "GET", 401),
    ("/api/v2/plans/not-a-uuid/users", "GET", 401),
    ("/api/v2/plans/{plan}/users?page=0&per_page=x", "GET", 401),
    ("/api/v2/plans/{other}/users?sort=nope", "GET", 401),
])
async def test_without_a_token_route_and_method_come_first_then_401(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, path: str, method: str,
        status: int, upstream_counts: Callable[[], dict[str, int]]) -> None:
    url = path.format(plan=DEMO_PLAN_ID, other=OTHER_PLAN)
    ours = await proxy.request(method, url)
    theirs = await emulator.request(method, url)
    assert ours.status_code == theirs.status_code == status
    assert ours.json() == theirs.json()
    assert upstream_counts() == {}


@pytest.mark.parametrize(("token", "plan", "query", "status"), [
    (DEMO_PLAN_TOKEN, "not-a-uuid", "", 400),            # 400 before 403
    (DEMO_PLAN_TOKEN, OTHER_PLAN, "page=0", 400),        # 400 before 403
    (DEMO_PLAN_TOKEN, OTHER_PLAN, "per_page=101", 400),
    (DEMO_PLAN_TOKEN, OTHER_PLAN, "status=ENROLLED", 400),
    (DEMO_PLAN_TOKEN, OTHER_PLAN, "", 403),
    (DEMO_PLAN_TOKEN, OTHER_PLAN, "nonsense=1", 403),    # unknown parameters ignored
])
async def test_with_a_token_parameters_come_before_plan_scope(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient, token: str, plan: str,
        query: str, status: int, upstream_counts: Callable[[], dict[str, int]]) -> None:
    response = await assert_same(proxy, emulator, "progress", query, plan=plan,
                                 headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status
    assert upstream_counts() == {}
