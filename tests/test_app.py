"""The proxy app's own routes and error rendering."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.errors import ConfigError
from legacy_bridge.settings import Settings


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


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`BRIDGE_{name.upper()}`" not in readme
               and f"BRIDGE_{name.upper()}`" not in readme]
    assert missing == []


@pytest.mark.parametrize(("overrides", "message"), [
    ({"tokens_file": None}, "BRIDGE_TOKENS_FILE is required"),
    ({"upstream_api_key": None}, "BRIDGE_UPSTREAM_API_KEY or BRIDGE_UPSTREAM_API_KEY_FILE"),
])
def test_tokens_mode_refuses_to_start_without_its_settings(
        make_proxy: Callable[..., Starlette], overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_proxy(**overrides)


def test_api_key_can_come_from_a_file(tmp_path: Path, make_proxy: Callable[..., Starlette],
                                      ) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("demo-company-key\n")
    app = make_proxy(upstream_api_key=None, upstream_api_key_file=key_file)
    assert app.state.bridge.auth.api_key == "demo-company-key"


def test_a_redis_cache_without_the_redis_extra_names_the_install(
        make_proxy: Callable[..., Starlette], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "legacy_bridge.redis_cache", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'legacy-bridge\[redis\]'"):
        make_proxy(cursor_cache="redis://127.0.0.1:6379/0")


def test_a_postgresql_store_without_the_postgres_extra_names_the_install(
        make_proxy: Callable[..., Starlette], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"pip install 'legacy-bridge\[postgres\]'"):
        make_proxy(store_url="postgresql://127.0.0.1:9/bridge")


async def test_the_admin_token_can_come_from_a_file(
        tmp_path: Path, make_proxy: Callable[..., Starlette]) -> None:
    secret = tmp_path / "admin-token"
    secret.write_text("from-a-file\n")
    app = make_proxy(admin_token=None, admin_token_file=secret)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as client:
        opened = await client.get("/_bridge/usage.json",
                                  headers={"Authorization": "Bearer from-a-file"})
        shut = await client.get("/_bridge/usage.json",
                                headers={"Authorization": "Bearer admin-token-for-tests"})
    assert opened.status_code == 200 and shut.status_code == 401
