"""The layers around every request: request id, catch-all, size gate, route headers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge import rest
from support import legacy


class Broken(Exception):
    """Stands for a bug: an exception no layer of the proxy expects."""


async def test_an_unexpected_exception_is_the_contract_json_500_with_the_request_id(
        make_proxy: Callable[..., Starlette], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise Broken("a bug")

    monkeypatch.setattr(rest.params, "parse", broken)
    app = make_proxy()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        response = await legacy(proxy, "users", headers={
            "Authorization": "Bearer demo-plan-token", "X-Request-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers.get_list("x-request-id") == ["req-42"]
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (500, "internal_error")
    assert "req-42" in error["message"] and "a bug" not in error["message"]
    logged = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log


async def test_a_deprecated_route_carries_its_headers_and_others_do_not(
        proxy: httpx.AsyncClient) -> None:
    answer = await legacy(proxy, "users", "per_page=1")
    assert answer.headers["deprecation"].startswith("@")
    health = await proxy.get("/healthz")
    assert "deprecation" not in health.headers
