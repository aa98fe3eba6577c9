"""The legacy relay: an old API that is down or slow gets the contract's JSON errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_COMPANY_TOKEN
from legacy_bridge.settings import Settings
from support import DATA_API, MAPPINGS, free_port, legacy

COMPANY = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}
# mode settings, and whether the GraphQL side must fail first for the old API to be asked
MODES = [
    pytest.param({"mode": "legacy"}, id="legacy"),
    pytest.param({"mode": "shadow", "shadow_primary": "legacy"}, id="shadow-legacy-primary"),
    pytest.param({"mode": "graphql-fallback"}, id="graphql-fallback"),
]


def _proxy(emulator_app: Starlette, tokens_file: Path, tmp_path: Path,
           legacy_transport: httpx.AsyncBaseTransport | None, legacy_url: str,
           **overrides: Any) -> Starlette:
    fallback = overrides.get("mode") == "graphql-fallback"
    settings = Settings(**{
        # graphql-fallback asks the old API only when the translation fails upstream
        "upstream_url": f"http://127.0.0.1:{free_port()}" if fallback else "http://upstream",
        "upstream_api_key": SecretStr(DEMO_API_KEY), "upstream_retries": 0,
        "tokens_file": tokens_file, "mappings_dir": MAPPINGS, "legacy_url": legacy_url,
        "store_url": f"sqlite:///{tmp_path}/store.sqlite3", **overrides})
    transport = None if fallback else httpx.ASGITransport(app=emulator_app)
    return create_app(settings, transport=transport, legacy_transport=legacy_transport)


async def _ask(app: Starlette, kind: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        if kind == "v2":
            return await legacy(proxy, "users", "per_page=3", headers=COMPANY)
        return await proxy.post(DATA_API, json={"query": "SELECT email FROM roster_v1"},
                                headers=COMPANY)


def _assert_contract_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == {"status": status, "code": code,
                                        "message": response.json()["error"]["message"]}
    assert response.headers.get_list("x-request-id") and \
        len(response.headers.get_list("x-request-id")) == 1


@pytest.mark.parametrize("kind", ["v2", "data-api"])
@pytest.mark.parametrize("overrides", MODES)
async def test_an_old_api_nobody_listens_on_is_502_upstream_error(
        emulator_app: Starlette, tokens_file: Path, tmp_path: Path, overrides: dict[str, str],
        kind: str) -> None:
    app = _proxy(emulator_app, tokens_file, tmp_path, None,
                 f"http://127.0.0.1:{free_port()}", **overrides)
    _assert_contract_error(await _ask(app, kind), 502, "upstream_error")


@pytest.mark.parametrize("kind", ["v2", "data-api"])
@pytest.mark.parametrize("overrides", MODES)
async def test_an_old_api_that_does_not_answer_in_time_is_504_upstream_timeout(
        emulator_app: Starlette, tokens_file: Path, tmp_path: Path, overrides: dict[str, str],
        kind: str) -> None:
    def too_slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    app = _proxy(emulator_app, tokens_file, tmp_path, httpx.MockTransport(too_slow),
                 "http://old-api", **overrides)
    _assert_contract_error(await _ask(app, kind), 504, "upstream_timeout")


async def test_the_relay_returns_one_request_id_of_the_proxys_choosing(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(mode="legacy", legacy_url="http://upstream")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        response = await legacy(proxy, "users", "per_page=1",
                                headers={**COMPANY, "X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.headers.get_list("x-request-id") == ["abc-123"]
