"""The proxy app's own routes and error rendering."""

from __future__ import annotations

import httpx


async def test_healthz_answers_ok(proxy: httpx.AsyncClient) -> None:
    response = await proxy.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_unknown_route_is_the_contract_404_body(proxy: httpx.AsyncClient) -> None:
    response = await proxy.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"status": 404, "code": "not_found",
                                         "message": "no such route"}}


async def test_wrong_method_is_405_with_allow_get(proxy: httpx.AsyncClient) -> None:
    response = await proxy.post("/healthz")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["error"]["code"] == "method_not_allowed"
