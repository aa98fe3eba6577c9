"""Issue 14, item 5: the legacy relay stays inside the routes and forwards clean headers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.settings import Settings
from support import MAPPINGS

AUTH = {"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}


class OldApi:
    """Records what reached the old API; answers a page."""

    def __init__(self) -> None:
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(200, stream=httpx.ByteStream(b'{"results": []}'), headers={
            "Content-Type": "application/json", "Connection": "x-secret-hop",
            "X-Secret-Hop": "1", "X-Request-ID": "theirs"})


def _proxy(tmp_path: Path, tokens_file: Path, old: OldApi) -> Starlette:
    settings = Settings(upstream_url="http://upstream", legacy_url="http://old-api",
                        mode="legacy", upstream_api_key=SecretStr(DEMO_API_KEY),
                        tokens_file=tokens_file, mappings_dir=MAPPINGS,
                        store_url=f"sqlite:///{tmp_path}/store.sqlite3")
    return create_app(settings, legacy_transport=httpx.MockTransport(old))


async def _get(app: Starlette, path: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("10.1.2.3", 5)),
                                 base_url="http://proxy") as proxy:
        return await proxy.get(path, headers={**AUTH, **headers})


@pytest.mark.parametrize("plan", ["%2E%2E", "..%252F..", "not-a-uuid", "%2e%2E%2fusers"])
async def test_a_path_outside_the_routes_never_reaches_the_old_api(
        tmp_path: Path, tokens_file: Path, plan: str) -> None:
    old = OldApi()
    answer = await _get(_proxy(tmp_path, tokens_file, old), f"/api/v2/plans/{plan}/users")
    assert answer.status_code in (400, 404)
    assert answer.json()["error"]["code"] in ("invalid_parameter", "not_found")
    assert old.seen == []


async def test_the_path_is_relayed_as_the_client_wrote_it(tmp_path: Path,
                                                         tokens_file: Path) -> None:
    old = OldApi()
    await _get(_proxy(tmp_path, tokens_file, old),
               f"/api/v2/plans/{DEMO_PLAN_ID.upper()}/users?per_page=3&status=a%2Cb")
    assert old.seen[0].url.raw_path == \
        f"/api/v2/plans/{DEMO_PLAN_ID.upper()}/users?per_page=3&status=a%2Cb".encode()


async def test_hop_by_hop_and_connection_named_headers_stay_behind(
        tmp_path: Path, tokens_file: Path) -> None:
    old = OldApi()
    answer = await _get(_proxy(tmp_path, tokens_file, old),
                        f"/api/v2/plans/{DEMO_PLAN_ID}/users", **{
                            "Connection": "keep-alive, X-Internal", "X-Internal": "secret",
                            "X-Forwarded-For": "192.0.2.1", "X-Request-ID": "bad id\x7f"})
    sent = old.seen[0].headers
    assert "x-internal" not in sent
    assert sent.get("connection") in (None, "keep-alive")  # the relay's own connection
    assert sent["x-forwarded-for"] == "192.0.2.1, 10.1.2.3"
    assert sent["x-request-id"] == answer.headers["x-request-id"] != "bad id\x7f"
    assert "x-secret-hop" not in answer.headers  # named by the old API's Connection
    assert answer.headers.get_list("x-request-id") == [sent["x-request-id"]]
