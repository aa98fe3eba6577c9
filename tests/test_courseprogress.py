"""The course-progress routes: the 15 acceptance checks of course-progress-mapping.md.

The proxy talks to the emulator's Learning Path API over real HTTP; "requests"
are the emulator's own log (`/_emulator/requests`): operation, variables and
the acting user, never a token.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.emulator.app import (
    DEMO_ADMIN_TOKEN,
    DEMO_COMPANY_TOKEN,
    DEMO_LEARNER2_TOKEN,
    DEMO_LEARNER_TOKEN,
)
from legacy_bridge.emulator.learning_path import ANA, BEN, SERVICE_USER
from support import MAPPINGS

AS_ANA = {"Authorization": f"Bearer {DEMO_LEARNER_TOKEN}"}
AS_BEN = {"Authorization": f"Bearer {DEMO_LEARNER2_TOKEN}"}
AS_ADMIN = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
READ, COMPLETE, STATUS = ("PagesCompletedByCourse", "UpdateTopicAndCourseProgress",
                          "UpdateCourseStatus")
INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Upstream:
    """The emulator over real HTTP, and what it logged."""

    def __init__(self, url: str, app: Starlette) -> None:
        self.url, self.app = url, app

    def requests(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/_emulator/requests").json()["requests"])

    def operations(self) -> list[str]:
        return [r["operationName"] for r in self.requests()]

    def reset(self) -> None:
        httpx.post(f"{self.url}/_emulator/reset")

    def fault(self, kind: str, operation: str) -> None:
        httpx.post(f"{self.url}/_emulator/faults", json={"kind": kind, "operation": operation,
                                                        "timeout_seconds": 5})

    def progress_percent(self, auth_token: str, course: str) -> int:
        answer = httpx.post(f"{self.url}/api/public/api/v1/learning-path/graphql", json={
            "query": "query P($id: ID!) { UserCourseProgress(id: $id) { percentComplete } }",
            "variables": {"id": course}},
            headers={"Authorization": "Token demo-company-key", "authToken": auth_token})
        return int(answer.json()["data"]["UserCourseProgress"]["percentComplete"])


@pytest.fixture
def upstream(emulator_app: Starlette, serve_http: Callable[[Starlette], str]) -> Upstream:
    return Upstream(serve_http(emulator_app), emulator_app)


@pytest.fixture
async def proxy(make_proxy: Callable[..., Starlette], upstream: Upstream
                ) -> AsyncIterator[httpx.AsyncClient]:
    app = make_proxy(over_http=True, upstream_url=upstream.url, upstream_timeout=2,
                     upstream_backoff=0)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as client:
        yield client


def record(lesson: int, course: int = 42, user: str = ANA, completed: bool = False,
           video: float = 0, position: float = 0, at: str | None = None) -> dict[str, Any]:
    return {"user_id": user, "course_id": course, "lesson_id": lesson, "completed": completed,
            "video_progress": video, "last_position": position, "completed_at": at}


# -- 1-7: Ana's first steps -------------------------------------------------------

async def test_1_a_learner_without_progress_reads_an_empty_array(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.get("/api/progress?courseId=42", headers=AS_ANA)
    assert answer.status_code == 200 and answer.json() == []
    assert answer.headers["content-type"] == "application/json"
    assert [(r["operationName"], r["auth_user"]) for r in upstream.requests()] == [(READ, ANA)]


async def test_2_a_first_position_save_reads_once_and_sends_no_mutation(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.post("/api/progress", headers=AS_ANA, json={
        "course_id": 42, "lesson_id": 101, "video_progress": 180, "last_position": 180})
    assert answer.status_code == 200
    assert answer.content == (
        b'{"user_id":"0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e01","course_id":42,"lesson_id":101,'
        b'"completed":false,"video_progress":180,"last_position":180,"completed_at":null}')
    assert upstream.operations() == [READ]


async def test_3_the_saved_record_is_read_back_filtered_and_unfiltered(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    await proxy.post("/api/progress", headers=AS_ANA, json={
        "course_id": 42, "lesson_id": 101, "video_progress": 180, "last_position": 180})
    upstream.reset()
    filtered = await proxy.get("/api/progress?courseId=42", headers=AS_ANA)
    assert filtered.json() == [record(101, video=180, position=180)]
    unfiltered = await proxy.get("/api/progress", headers=AS_ANA)
    assert unfiltered.json() == filtered.json()
    assert upstream.operations() == [READ, READ, READ]  # one for 42; 42 and 43 unfiltered


async def test_4_a_position_update_on_a_known_row_costs_no_request(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    await proxy.post("/api/progress", headers=AS_ANA, json={
        "course_id": 42, "lesson_id": 101, "video_progress": 180, "last_position": 180})
    upstream.reset()
    answer = await proxy.put("/api/progress", headers=AS_ANA, json={
        "course_id": "42", "lesson_id": 101, "video_progress": 240.5})
    assert answer.json() == record(101, video=240.5, position=180)
    assert upstream.requests() == []
    assert len((await proxy.get("/api/progress?courseId=42", headers=AS_ANA)).json()) == 1


async def test_5_a_completion_reads_then_completes_each_topic_in_map_order(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    before = datetime.now(UTC)
    answer = await proxy.post("/api/progress", headers=AS_ANA,
                              json={"course_id": 42, "lesson_id": 101, "completed": True})
    after = datetime.now(UTC)
    body = answer.json()
    assert answer.status_code == 200 and body["completed"] is True
    assert INSTANT.match(body["completed_at"])
    at = datetime.fromisoformat(body["completed_at"].replace("Z", "+00:00"))
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= at <= after
    assert [(r["operationName"], r["variables"], r["auth_user"])
            for r in upstream.requests()] == [
        (READ, {"courseId": "course_abc123"}, ANA),
        (COMPLETE, {"topicId": "page_text_001", "progress": 100}, ANA),
        (COMPLETE, {"topicId": "page_video_002", "progress": 100}, ANA)]
    assert upstream.progress_percent("at-ana", "course_abc123") == 50


async def test_6_a_repeated_completion_keeps_its_time_and_sends_nothing(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    done = {"course_id": 42, "lesson_id": 101, "completed": True}
    first = (await proxy.post("/api/progress", headers=AS_ANA, json=done)).json()
    upstream.reset()
    again = (await proxy.post("/api/progress", headers=AS_ANA, json=done)).json()
    assert again == first
    assert COMPLETE not in upstream.operations()


async def test_7_completed_false_after_true_stays_completed_with_a_warning(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    first = (await proxy.post("/api/progress", headers=AS_ANA, json={
        "course_id": 42, "lesson_id": 101, "completed": True})).json()
    upstream.reset()
    answer = await proxy.post("/api/progress", headers=AS_ANA, json={
        "course_id": 42, "lesson_id": 101, "completed": False, "video_progress": 10})
    assert answer.json() == {**first, "video_progress": 10}
    assert answer.headers["warning"] == '299 legacy-bridge "completed cannot be reverted"'
    assert COMPLETE not in upstream.operations()


# -- 8-11: refusals, with nothing sent upstream --------------------------------------

@pytest.mark.parametrize(("body", "code", "names"), [
    (b'{"course_id": 42}', "missing_field", "lesson_id"),
    (b'{"course_id": 42, "lesson_id": null}', "missing_field", "lesson_id"),
    (b'{"course_id": 42, "lesson_id": 101, "video_progress": -1}', "invalid_field",
     "video_progress"),
    (b'{"course_id": "x", "video_progress": -1}', "missing_field", "lesson_id"),
    (b'{"course_id": "", "lesson_id": 101}', "invalid_field", "course_id"),
    (b'{"course_id": 42, "lesson_id": 101, "completed": "yes"}', "invalid_field", "completed"),
    (b'{"course_id": 42, "lesson_id": true}', "invalid_field", "lesson_id"),
    (b'{"course_id": 42, "lesson_id": 201}', "unknown_lesson", "201"),
    (b'{"course_id": 7, "lesson_id": 101}', "unknown_lesson", "101"),
    (b"not json", "invalid_body", "JSON"),
    (b"[1, 2]", "invalid_body", "JSON"),
    (b"", "invalid_body", "JSON"),
])
async def test_8_a_bad_write_is_400_and_sends_nothing(
        proxy: httpx.AsyncClient, upstream: Upstream, body: bytes, code: str,
        names: str) -> None:
    answer = await proxy.post("/api/progress", headers=AS_ANA, content=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == code and names in error["message"]
    assert upstream.requests() == []


@pytest.mark.parametrize("query", ["courseId=4x2", "courseId=", "courseId=-4", "courseId=4.0",
                                   "courseId=1&courseId=2", "courseId=2147483648"])
async def test_8_a_bad_course_id_is_invalid_parameter(
        proxy: httpx.AsyncClient, upstream: Upstream, query: str) -> None:
    answer = await proxy.get(f"/api/progress?{query}", headers=AS_ANA)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_parameter"
    assert upstream.requests() == []


async def test_an_unmapped_course_is_an_empty_array_without_a_request(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.get("/api/progress?courseId=99", headers=AS_ANA)
    assert answer.json() == [] and upstream.requests() == []


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/progress"), ("POST", "/api/progress"), ("PUT", "/api/progress"),
    ("GET", f"/api/admin/progress/{BEN}")])
@pytest.mark.parametrize("token", [None, "no-such-token"])
async def test_9_no_token_or_an_unknown_one_is_401_on_every_route(
        proxy: httpx.AsyncClient, upstream: Upstream, method: str, path: str,
        token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = await proxy.request(method, path, headers=headers,
                                 json={"course_id": 42, "lesson_id": 101})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert upstream.requests() == []


async def test_9_a_learner_on_the_admin_route_is_403(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.get(f"/api/admin/progress/{BEN}", headers=AS_ANA)
    assert answer.status_code == 403 and upstream.requests() == []


async def test_a_v2_plan_token_cannot_call_course_progress(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.get("/api/progress",
                             headers={"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"})
    assert answer.status_code == 403 and upstream.requests() == []


async def test_a_course_progress_token_cannot_call_the_v2_routes(
        proxy: httpx.AsyncClient) -> None:
    answer = await proxy.get("/api/v2/plans/fd6f0490-2072-43b0-b1d0-7ee82fe96df2/users",
                             headers=AS_ANA)
    assert answer.status_code == 403


async def test_10_the_admin_reads_the_path_learner_as_that_learner(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    first = await proxy.get(f"/api/admin/progress/{BEN}?courseId=42", headers=AS_ADMIN)
    body = first.json()
    assert body == [record(101, user=BEN, completed=True, at=body[0]["completed_at"])]
    assert INSTANT.match(body[0]["completed_at"])
    second = await proxy.get(f"/api/admin/progress/{BEN.upper()}?courseId=42",
                             headers=AS_ADMIN)
    assert second.json() == body  # the time it was first seen is kept
    assert {r["auth_user"] for r in upstream.requests()} == {BEN}


@pytest.mark.parametrize(("method", "path", "status", "allow"), [
    ("GET", "/api/admin/progress/not-a-uuid", 400, None),
    ("GET", "/api/admin/progress/0b6c1a525d8e4f3a9c1e7a2b4c6d8e01", 400, None),
    ("GET", "/api/admin/progress/0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8eff", 404, None),
    ("POST", f"/api/admin/progress/{BEN}", 405, "GET"),
    ("DELETE", "/api/progress", 405, "GET, POST, PUT"),
    ("GET", "/api/progress/", 404, None),
])
async def test_11_path_errors(proxy: httpx.AsyncClient, upstream: Upstream, method: str,
                              path: str, status: int, allow: str | None) -> None:
    answer = await proxy.request(method, path, headers=AS_ADMIN)
    assert answer.status_code == status
    assert answer.headers.get("allow") == allow
    assert upstream.requests() == []


# -- 12-15: isolation, faults, course completion, concurrency ----------------------

async def test_12_a_user_id_in_the_body_is_ignored(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.post("/api/progress", headers=AS_ANA, json={
        "user_id": BEN, "course_id": 42, "lesson_id": 103, "video_progress": 5})
    assert answer.json()["user_id"] == ANA
    bens = (await proxy.get("/api/progress?courseId=42", headers=AS_BEN)).json()
    assert [r["lesson_id"] for r in bens] == [101]
    assert {r["auth_user"] for r in upstream.requests()} == {ANA, BEN}


async def test_13_a_failed_mutation_is_502_once_and_the_retry_converges(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    complete = {"course_id": 42, "lesson_id": 102, "completed": True}
    upstream.fault("http_503", COMPLETE)
    failed = await proxy.post("/api/progress", headers=AS_ANA, json=complete)
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "upstream_error"
    assert upstream.operations().count(COMPLETE) == 1  # sent once, never retried
    assert (await proxy.get("/api/progress?courseId=42", headers=AS_ANA)).json() == []
    retried = await proxy.post("/api/progress", headers=AS_ANA, json=complete)
    assert retried.status_code == 200 and retried.json()["completed"] is True


async def test_13_a_mutation_timeout_is_504_and_not_retried(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.fault("timeout", COMPLETE)
    answer = await proxy.post("/api/progress", headers=AS_ANA,
                              json={"course_id": 42, "lesson_id": 102, "completed": True})
    assert answer.status_code == 504
    assert upstream.operations().count(COMPLETE) == 1


async def test_13_a_rate_limited_mutation_is_429_with_retry_after(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.fault("http_429", COMPLETE)
    answer = await proxy.post("/api/progress", headers=AS_ANA,
                              json={"course_id": 42, "lesson_id": 102, "completed": True})
    assert answer.status_code == 429 and answer.headers["retry-after"] == "7"


async def test_14_completing_the_last_lesson_completes_the_course_once(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    complete = {"course_id": 43, "lesson_id": 201, "completed": True}
    assert (await proxy.post("/api/progress", headers=AS_ANA, json=complete)).status_code == 200
    learning_path = upstream.app.state.learning_path
    assert learning_path.status(ANA, "course_def456") == "completed"
    assert len(learning_path.events(ANA)) == 1
    assert upstream.operations() == [READ, COMPLETE, STATUS]  # completion = "explicit"
    upstream.reset()
    assert (await proxy.post("/api/progress", headers=AS_ANA, json=complete)).status_code == 200
    assert len(learning_path.events(ANA)) == 1 and upstream.requests() == []


async def test_15_concurrent_saves_of_one_lesson_leave_one_record(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answers = await asyncio.gather(*(
        proxy.post("/api/progress", headers=AS_ANA,
                   json={"course_id": 42, "lesson_id": 103, "video_progress": n})
        for n in range(20)))
    assert {a.status_code for a in answers} == {200}
    records = (await proxy.get("/api/progress?courseId=42", headers=AS_ANA)).json()
    assert [r["lesson_id"] for r in records] == [103]
    assert SERVICE_USER not in {r["auth_user"] for r in upstream.requests()}


# -- which error wins (contract: "Precise rules") ------------------------------------

NO_TOKEN: dict[str, str] = {}


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), [
    ("DELETE", "/api/progress", NO_TOKEN, b"", 405, "method_not_allowed"),
    ("GET", "/api/progress/", NO_TOKEN, b"", 404, "not_found"),
    ("POST", "/api/progress", NO_TOKEN, b"not json", 401, "unauthorized"),
    ("GET", "/api/progress?courseId=x", NO_TOKEN, b"", 401, "unauthorized"),
    ("GET", "/api/admin/progress/not-a-uuid", AS_ANA, b"", 403, "forbidden"),
    ("POST", "/api/progress", {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}, b"x", 403,
     "forbidden"),
    # an admin acting on /api/progress has no platform identity of their own
    ("POST", "/api/progress", AS_ADMIN, b"not json", 403, "forbidden"),
    ("GET", "/api/admin/progress/0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8eff?courseId=x", AS_ADMIN,
     b"", 400, "invalid_parameter"),
    ("POST", "/api/progress", AS_ANA,
     b'{"course_id": 42, "lesson_id": 201, "video_progress": -1}', 400, "invalid_field"),
    ("POST", "/api/progress", AS_ANA, b'{"course_id": 7, "lesson_id": "x"}', 400,
     "invalid_field"),
])
async def test_the_first_failing_check_in_contract_order_answers(
        proxy: httpx.AsyncClient, upstream: Upstream, method: str, path: str,
        headers: dict[str, str], body: bytes, status: int, code: str) -> None:
    answer = await proxy.request(method, path, headers=headers, content=body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert answer.headers["content-type"] == "application/json"
    assert upstream.requests() == []


async def test_a_body_parsed_as_json_whatever_its_content_type(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.post("/api/progress", content=b'{"course_id": 42, "lesson_id": 103}',
                              headers={**AS_ANA, "Content-Type": "text/plain"})
    assert answer.status_code == 200 and answer.json()["lesson_id"] == 103


async def test_no_answer_carries_a_token_or_an_auth_token(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answers = [await proxy.get("/api/progress", headers=AS_ANA),
               await proxy.get(f"/api/admin/progress/{BEN}", headers=AS_ADMIN),
               await proxy.post("/api/progress", headers=AS_ANA, content=b"x")]
    for answer in answers:
        text = answer.text + str(answer.headers)
        assert not any(secret in text for secret in
                       (DEMO_LEARNER_TOKEN, DEMO_ADMIN_TOKEN, "at-ana", "at-ben"))


# -- two replicas on one PostgreSQL store --------------------------------------------

async def test_two_replicas_on_one_postgresql_store_keep_one_record_per_lesson(
        make_proxy: Callable[..., Starlette], upstream: Upstream,
        postgres_server: str) -> None:
    """Saves through two replicas at once: one row, every save applied whole, and a
    completion made through one replica read completed through the other."""
    import psycopg

    apps = [make_proxy(over_http=True, upstream_url=upstream.url, store_url=postgres_server)
            for _ in range(2)]
    with psycopg.connect(postgres_server, autocommit=True) as db:  # the shared server
        db.execute("DELETE FROM lesson_progress")
    async with apps[0].router.lifespan_context(apps[0]), \
            apps[1].router.lifespan_context(apps[1]):
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=a),
                                     base_url="http://proxy") for a in apps]
        saves = [clients[n % 2].post("/api/progress", headers=AS_ANA, json={
            "course_id": 42, "lesson_id": 101, "video_progress": n, "last_position": n})
            for n in range(20)]
        answers = await asyncio.gather(*saves)
        assert {a.status_code for a in answers} == {200}
        assert all(a.json()["video_progress"] == a.json()["last_position"] for a in answers)
        # one field each, at once: neither save undoes the other's
        await asyncio.gather(
            clients[0].post("/api/progress", headers=AS_ANA, json={
                "course_id": 42, "lesson_id": 101, "video_progress": 1000}),
            clients[1].post("/api/progress", headers=AS_ANA, json={
                "course_id": 42, "lesson_id": 101, "last_position": 2000}))
        done = await clients[0].post("/api/progress", headers=AS_ANA, json={
            "course_id": 42, "lesson_id": 101, "completed": True})
        seen = (await clients[1].get("/api/progress?courseId=42", headers=AS_ANA)).json()
        for client in clients:
            await client.aclose()
    assert len(seen) == 1 and seen[0]["completed"] is True
    assert seen[0]["completed_at"] == done.json()["completed_at"]
    assert (seen[0]["video_progress"], seen[0]["last_position"]) == (1000, 2000)


# -- explain: what a call would send, nothing written ----------------------------------

BRIDGE_ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


async def test_explain_a_read_lists_one_query_per_course_and_sends_nothing(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.get("/_bridge/explain", headers=BRIDGE_ADMIN, params={
        "url": "/api/progress", "learner": ANA})
    body = answer.json()
    assert [(s["operation"], s["variables"]) for s in body["upstream"]] == [
        (READ, {"courseId": "course_abc123"}), (READ, {"courseId": "course_def456"})]
    assert body["upstream_requests"] == 2 and upstream.requests() == []


async def test_explain_a_completion_reads_once_and_lists_the_mutations_unsent(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    answer = await proxy.post("/_bridge/explain", headers=BRIDGE_ADMIN, params={
        "url": "/api/progress", "learner": ANA},
        json={"course_id": 43, "lesson_id": 201, "completed": True})
    steps = answer.json()["upstream"]
    assert [(s["operation"], s["sent_by_explain"]) for s in steps] == [
        (READ, True), (COMPLETE, False), (STATUS, False)]
    assert steps[1]["variables"] == {"topicId": "page_video_101", "progress": 100}
    assert "mutation UpdateTopicAndCourseProgress" in steps[1]["query"]
    assert upstream.operations() == [READ]  # the read; never a mutation
    assert (await proxy.get("/api/progress", headers=AS_ANA)).json() == []


async def test_explain_a_position_save_on_a_known_row_sends_nothing(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    await proxy.post("/api/progress", headers=AS_ANA,
                     json={"course_id": 42, "lesson_id": 103, "video_progress": 1})
    upstream.reset()
    answer = await proxy.post("/_bridge/explain", headers=BRIDGE_ADMIN, params={
        "url": "/api/progress", "learner": ANA},
        json={"course_id": 42, "lesson_id": 103, "video_progress": 2})
    assert answer.json()["upstream"] == [] and upstream.requests() == []


async def test_explain_the_admin_route_reads_as_the_path_learner(
        proxy: httpx.AsyncClient) -> None:
    answer = await proxy.get("/_bridge/explain", headers=BRIDGE_ADMIN, params={
        "url": f"/api/admin/progress/{BEN}?courseId=43"})
    assert answer.json()["learner"] == BEN
    assert len(answer.json()["upstream"]) == 1


@pytest.mark.parametrize("params", [{"url": "/api/progress"},
                                    {"url": "/api/progress", "learner": "nope"}])
async def test_explain_needs_the_learner_to_act_as(
        proxy: httpx.AsyncClient, params: dict[str, str]) -> None:
    answer = await proxy.get("/_bridge/explain", headers=BRIDGE_ADMIN, params=params)
    assert answer.status_code == 400


# -- the rest of the contract's error table ------------------------------------------

async def test_more_mapped_courses_than_the_cap_need_a_course_id(
        make_proxy: Callable[..., Starlette], upstream: Upstream) -> None:
    app = make_proxy(over_http=True, upstream_url=upstream.url, progress_max_courses=1)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        unfiltered = await proxy.get("/api/progress", headers=AS_ANA)
        filtered = await proxy.get("/api/progress?courseId=42", headers=AS_ANA)
    assert unfiltered.status_code == 400
    assert unfiltered.json()["error"]["code"] == "course_id_required"
    assert filtered.status_code == 200
    assert upstream.operations() == [READ]  # only the filtered read went out


async def test_a_failing_progress_store_is_the_contracts_500(
        proxy: httpx.AsyncClient, upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> None:
    from legacy_bridge.store import Store

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Store, "apply_lesson", broken)
    answer = await proxy.post("/api/progress", headers=AS_ANA,
                              json={"course_id": 42, "lesson_id": 103, "video_progress": 1})
    assert answer.status_code == 500
    assert answer.json()["error"] == {"status": 500, "code": "internal_error",
                                      "message": "the progress store failed"}


async def test_a_graphql_error_on_the_mutation_is_502(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    upstream.fault("graphql_error", COMPLETE)
    answer = await proxy.post("/api/progress", headers=AS_ANA,
                              json={"course_id": 42, "lesson_id": 102, "completed": True})
    assert answer.status_code == 502
    assert "resolver" not in answer.text  # never the upstream's text


async def test_a_mutation_answered_false_is_502_and_nothing_is_stored(
        make_proxy: Callable[..., Starlette], emulator_app: Starlette) -> None:
    async def refusing(scope: Any, receive: Any, send: Any) -> None:
        """The emulator, but the platform answers `false` to every topic update."""
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b"UpdateTopicAndCourseProgress" in body:
            answer = b'{"data": {"UpdateTopicAndCourseProgress": false}}'
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": answer})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await emulator_app(scope, replay, send)

    from legacy_bridge.app import create_app
    from legacy_bridge.settings import Settings
    settings = make_proxy().state.bridge.settings
    app = create_app(Settings(**{**settings.model_dump(), "upstream_backoff": 0}),
                     transport=httpx.ASGITransport(app=refusing))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        answer = await proxy.post("/api/progress", headers=AS_ANA,
                                  json={"course_id": 42, "lesson_id": 102, "completed": True})
        after = (await proxy.get("/api/progress?courseId=42", headers=AS_ANA)).json()
    assert answer.status_code == 502 and after == []


async def test_an_auth_token_the_platform_refuses_is_502_without_its_value(
        make_proxy: Callable[..., Starlette], upstream: Upstream, tmp_path: Path) -> None:
    learners = tmp_path / "stale-learners.toml"
    learners.write_text(f'[[learners]]\nuser_id = "{ANA}"\nauth_token = "at-expired"\n')
    app = make_proxy(over_http=True, upstream_url=upstream.url, learners_file=learners)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        answer = await proxy.get("/api/progress?courseId=42", headers=AS_ANA)
    assert answer.status_code == 502 and "at-expired" not in answer.text
    assert [r["auth_user"] for r in upstream.requests()] == [None]  # refused, no user


async def test_an_open_breaker_is_503_with_retry_after(
        make_proxy: Callable[..., Starlette], upstream: Upstream) -> None:
    app = make_proxy(over_http=True, upstream_url=upstream.url, breaker_failures=1,
                     upstream_retries=0)
    httpx.post(f"{upstream.url}/_emulator/faults", json={"kind": "http_503", "operation": READ})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        failed = await proxy.get("/api/progress?courseId=42", headers=AS_ANA)
        shut = await proxy.get("/api/progress?courseId=42", headers=AS_ANA)
    assert failed.status_code == 502
    assert shut.status_code == 503 and "retry-after" in shut.headers
    assert upstream.operations() == [READ]  # the breaker answered the second


async def test_metrics_and_usage_count_the_course_progress_routes_by_template(
        proxy: httpx.AsyncClient, upstream: Upstream) -> None:
    await proxy.get("/api/progress?courseId=42", headers=AS_ANA)
    await proxy.get(f"/api/admin/progress/{BEN}", headers=AS_ADMIN)
    metrics = (await proxy.get("/metrics")).text
    assert 'route="/api/progress",status="200"' in metrics
    assert 'route="/api/admin/progress/{learnerId}",status="200"' in metrics
    assert BEN not in metrics
    assert 'api="learning-path",outcome="ok"' in metrics
    usage = (await proxy.get("/_bridge/usage.json", headers=BRIDGE_ADMIN)).json()
    assert {(u["client"], u["route"], u["kind"], u["name"]) for u in usage} >= {
        ("ana", "course-progress", "request", ""), ("ana", "course-progress", "param",
                                                    "courseId"),
        ("course-admin", "course-progress-admin", "request", "")}


async def test_opt_in_partial_progress_is_forwarded_only_when_it_rises(
        make_proxy: Callable[..., Starlette], upstream: Upstream, tmp_path: Path) -> None:
    tables = tmp_path / "tables"
    shutil.copytree(MAPPINGS, tables)
    table = tables / "course-progress.toml"
    table.write_text(table.read_text().replace("forward_partial = false",
                                               "forward_partial = true"))
    course_map = tables / "course-map.toml"
    course_map.write_text(course_map.read_text().replace(
        'topics = ["page_video_004"]', 'topics = ["page_video_004"]\nduration_seconds = 300'))
    app = make_proxy(over_http=True, upstream_url=upstream.url, mappings_dir=tables)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        for seconds in (150, 100, 290, 400, 400):  # 50%, 33%, 96%, 99% (capped), 99%
            answer = await proxy.post("/api/progress", headers=AS_ANA, json={
                "course_id": 42, "lesson_id": 103, "video_progress": seconds})
            assert answer.status_code == 200
        # a two-topic lesson: nothing to say which topic the seconds belong to
        await proxy.post("/api/progress", headers=AS_ANA,
                         json={"course_id": 42, "lesson_id": 101, "video_progress": 300})
        records = (await proxy.get("/api/progress?courseId=42", headers=AS_ANA)).json()
    sent = [r["variables"] for r in upstream.requests() if r["operationName"] == COMPLETE]
    assert sent == [{"topicId": "page_video_004", "progress": p} for p in (50, 96, 99)]
    assert [r["completed"] for r in records] == [False, False]  # 99 never completes
