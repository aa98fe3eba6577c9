"""Issue 14, item 7: passthrough mode, where each client brings its own upstream key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.emulator.app import DEMO_API_KEY
from legacy_bridge.settings import Settings
from support import DATA_API, MAPPINGS

QUERY = "SELECT nd_title FROM roster_v1 WHERE node_key = 'nd089' LIMIT 1"


def _passthrough(upstream: Starlette, tmp_path: Path) -> Starlette:
    settings = Settings(upstream_url="http://upstream", auth_mode="passthrough",
                        mappings_dir=MAPPINGS, upstream_api_key=SecretStr("unused"),
                        store_url=f"sqlite:///{tmp_path}/store.sqlite3")
    return create_app(settings, transport=httpx.ASGITransport(app=upstream))


async def test_the_catalog_is_cached_per_credential(
        make_emulator: Callable[..., Starlette], tmp_path: Path) -> None:
    upstream = make_emulator(api_keys=(DEMO_API_KEY, "second-company-key"))
    app = _passthrough(upstream, tmp_path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        for key in (DEMO_API_KEY, "second-company-key", DEMO_API_KEY, "second-company-key"):
            answer = await proxy.post(DATA_API, json={"query": QUERY},
                                      headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200
    # one catalog read per key: key B never sees what was read with key A
    assert upstream.state.controls.counts["catalog"] == 2


@pytest.mark.parametrize("kind", ["v2", "data-api"])
async def test_a_key_the_upstream_refuses_is_the_clients_401(
        make_emulator: Callable[..., Starlette], tmp_path: Path,
        caplog: pytest.LogCaptureFixture, kind: str) -> None:
    app = _passthrough(make_emulator(), tmp_path)
    headers = {"Authorization": "Bearer not-a-known-token"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://proxy") as proxy:
        if kind == "v2":
            answer = await proxy.get("/api/v2/plans/fd6f0490-2072-43b0-b1d0-7ee82fe96df2/users",
                                     headers=headers)
        else:
            answer = await proxy.post(DATA_API, json={"query": QUERY}, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # no alarm
