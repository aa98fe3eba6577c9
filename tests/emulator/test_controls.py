"""The emulator's test controls inject faults, add latency and count requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette

from support import graphql

QUERY = "query($input: ProgramProgressInput!) { programProgress(input: $input) { totalCount } }"
VARIABLES = {"input": {"first": 1}}


async def inject(client: httpx.AsyncClient, kind: str, count: int = 1, **extra: object) -> None:
    response = await client.post("/_emulator/faults", json={"kind": kind, "count": count, **extra})
    assert response.status_code == 200


@pytest.mark.parametrize(("kind", "status"), [
    ("http_500", 500), ("http_502", 502), ("http_503", 503), ("http_504", 504),
    ("http_401", 401),
])
async def test_http_faults_answer_their_status_then_recover(
        emulator: httpx.AsyncClient, kind: str, status: int) -> None:
    await inject(emulator, kind, count=2)
    statuses = [(await graphql(emulator, "program-progress", QUERY, VARIABLES)).status_code
                for _ in range(3)]
    assert statuses == [status, status, 200]


async def test_rate_limit_fault_is_429_with_retry_after(emulator: httpx.AsyncClient) -> None:
    await inject(emulator, "http_429")
    response = await graphql(emulator, "program-progress", QUERY, VARIABLES)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


async def test_malformed_json_fault_is_not_json(emulator: httpx.AsyncClient) -> None:
    await inject(emulator, "malformed_json")
    response = await graphql(emulator, "program-progress", QUERY, VARIABLES)
    with pytest.raises(ValueError):
        response.json()


async def test_graphql_error_fault_has_errors_and_no_data(emulator: httpx.AsyncClient) -> None:
    await inject(emulator, "graphql_error")
    response = await graphql(emulator, "program-progress", QUERY, VARIABLES)
    assert response.status_code == 200
    assert response.json()["data"] is None and response.json()["errors"]


async def test_fault_for_one_api_spares_the_others(emulator: httpx.AsyncClient) -> None:
    await inject(emulator, "http_500", api="assessment-progress")
    ok = await graphql(emulator, "program-progress", QUERY, VARIABLES)
    assert ok.status_code == 200
    query = ("query($input: AssessmentProgressInput!) "
             "{ assessmentProgress(input: $input) { totalCount } }")
    failed = await graphql(emulator, "assessment-progress", query, VARIABLES)
    assert failed.status_code == 500


def _post(client: httpx.Client, timeout: float | None = None) -> httpx.Response:
    return client.post("/api/public/api/v1/program-progress/graphql",
                       json={"query": QUERY, "variables": VARIABLES},
                       headers={"Authorization": "Token demo-company-key"},
                       timeout=timeout)


def test_timeout_fault_outlasts_a_client_timeout(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str]) -> None:
    with httpx.Client(base_url=serve_http(emulator_app)) as client:
        client.post("/_emulator/faults", json={"kind": "timeout", "timeout_seconds": 5})
        with pytest.raises(httpx.ReadTimeout):
            _post(client, timeout=0.2)
        assert _post(client).status_code == 200


def test_latency_delays_every_upstream_answer(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str]) -> None:
    with httpx.Client(base_url=serve_http(emulator_app)) as client:
        client.post("/_emulator/latency", json={"ms": 1000})
        with pytest.raises(httpx.ReadTimeout):
            _post(client, timeout=0.2)
        client.post("/_emulator/reset")
        assert _post(client, timeout=5).status_code == 200


def test_drop_fault_breaks_the_connection_mid_response(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str]) -> None:
    base = serve_http(emulator_app)
    with httpx.Client(base_url=base) as client:
        assert client.post("/_emulator/faults", json={"kind": "drop"}).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            _post(client)
        assert _post(client).status_code == 200


async def test_unknown_fault_kind_is_refused(emulator: httpx.AsyncClient) -> None:
    response = await emulator.post("/_emulator/faults", json={"kind": "gremlins"})
    assert response.status_code == 400


async def test_requests_are_counted_per_api(emulator: httpx.AsyncClient) -> None:
    for _ in range(3):
        await graphql(emulator, "program-progress", QUERY, VARIABLES)
    await graphql(emulator, "catalog", "{ catalog { programs { key } } }")
    counts = (await emulator.get("/_emulator/counts")).json()
    assert counts == {"counts": {"program-progress": 3, "catalog": 1}, "total": 4}
    log = (await emulator.get("/_emulator/requests")).json()["requests"]
    assert log[0] == {"api": "program-progress", "operationName": None, "variables": VARIABLES,
                      "requestId": None, "auth_user": None, "traceparent": None}
    await emulator.post("/_emulator/reset")
    assert (await emulator.get("/_emulator/counts")).json()["total"] == 0


async def test_controls_are_absent_unless_enabled(
        make_emulator: Callable[..., Starlette]) -> None:
    app = make_emulator(controls=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://upstream") as client:
        response = await client.post("/_emulator/faults", json={"kind": "http_500"})
    assert response.status_code == 404


async def test_fault_window_fails_every_request_until_it_ends(
        emulator: httpx.AsyncClient) -> None:
    await inject(emulator, "http_503", seconds=0.3)
    during = [(await graphql(emulator, "program-progress", QUERY, VARIABLES)).status_code
              for _ in range(4)]
    await asyncio.sleep(0.35)
    after = await graphql(emulator, "program-progress", QUERY, VARIABLES)
    assert during == [503] * 4
    assert after.status_code == 200
