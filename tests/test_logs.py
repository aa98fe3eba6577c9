"""One JSON log line per request, a request id end to end, and no secrets in any line."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import httpx
import pytest

from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.logs import foreign_formatter, request_id
from support import TOKENS, legacy


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "legacy_bridge.request"]


async def test_each_request_logs_one_json_line_with_its_costs(
        proxy: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "legacy_bridge")
    await legacy(proxy, "users", "per_page=10")
    await legacy(proxy, "users", "per_page=10&page=2")
    first, second = request_lines(caplog)
    assert first["event"] == "request" and first["level"] == "info"
    assert first["route"] == "/api/v2/plans/{planId}/users"
    assert first["status"] == 200 and first["method"] == "GET"
    assert first["client"] == "demo-plan"
    assert (first["upstream_requests"], first["checkpoint_hits"]) == (1, 0)
    assert (second["upstream_requests"], second["checkpoint_hits"]) == (1, 1)
    assert first["duration_ms"] >= 0 and "timestamp" in first


async def test_rejected_requests_are_logged_too(
        proxy: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "legacy_bridge")
    await legacy(proxy, "users", headers={})
    await legacy(proxy, "nope")
    unauthorized, not_found = request_lines(caplog)
    assert (unauthorized["status"], unauthorized["client"]) == (401, None)
    assert (not_found["status"], not_found["route"]) == (404, None)


async def test_request_id_is_accepted_returned_and_sent_upstream(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient) -> None:
    response = await proxy.get("/api/v2/plans/fd6f0490-2072-43b0-b1d0-7ee82fe96df2/users",
                               headers={"Authorization": f"Bearer {DEMO_PLAN_TOKEN}",
                                        "X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    upstream = (await emulator.get("/_emulator/requests")).json()["requests"]
    assert [r["requestId"] for r in upstream] == ["abc-123"]


async def test_request_id_is_generated_when_missing(proxy: httpx.AsyncClient) -> None:
    response = await legacy(proxy, "users")
    assert len(response.headers["x-request-id"]) == 32


@pytest.mark.parametrize("offered", ["", "a" * 129, "bad id", "x\ny"])
def test_unsafe_request_ids_are_replaced(offered: str) -> None:
    assert request_id(offered) != offered


async def test_no_token_or_key_in_any_log_line(
        proxy: httpx.AsyncClient, emulator: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await emulator.post("/_emulator/faults", json={"kind": "http_401"})
    for token in TOKENS:
        await legacy(proxy, "users", headers={"Authorization": f"Bearer {token}"})
    await legacy(proxy, "users", headers={"Authorization": "Bearer not-a-known-token"})
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "upstream refused the proxy's API key" in text
    for secret in [*TOKENS, DEMO_API_KEY, "not-a-known-token"]:
        assert secret not in text


def test_another_librarys_traceback_is_one_json_line_with_the_exception() -> None:
    record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1,
                               "Exception in ASGI application", None, None)
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = foreign_formatter().format(record)
    assert "\n" not in line
    rendered = json.loads(line)
    assert rendered["event"] == "Exception in ASGI application"
    assert rendered["logger"] == "uvicorn.error" and rendered["level"] == "error"
    assert "ValueError: boom" in rendered["exception"]
