"""Issue 14, item 2: a comparison where one side answered an error stores no personal data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_COMPANY_TOKEN, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.settings import Settings
from support import MAPPINGS, OTHER_PLAN, OTHER_PLAN_TOKEN

LEGACY_ONLY_TOKEN = "a-token-only-the-old-api-knows"


@pytest.mark.parametrize(("primary", "token", "plan"), [
    # the proxy answers records; the old API refuses a token it never issued
    ("graphql", OTHER_PLAN_TOKEN, OTHER_PLAN),
    # the old API answers records; the proxy refuses a token its table lacks
    ("legacy", LEGACY_ONLY_TOKEN, DEMO_PLAN_ID),
])
@pytest.mark.parametrize("route", ["users", "progress", "assessment-attempts"])
async def test_an_error_on_one_side_stores_no_records(
        make_emulator: Callable[..., Starlette], tokens_file: Path, tmp_path: Path,
        primary: str, token: str, plan: str, route: str) -> None:
    upstream = make_emulator(legacy_tokens={DEMO_PLAN_TOKEN: (DEMO_PLAN_ID,),
                                            DEMO_COMPANY_TOKEN: ("*",),
                                            LEGACY_ONLY_TOKEN: (DEMO_PLAN_ID,)})
    transport = httpx.ASGITransport(app=upstream)
    app = create_app(Settings(
        upstream_url="http://upstream", legacy_url="http://upstream", mode="shadow",
        shadow_primary=primary, upstream_api_key=SecretStr(DEMO_API_KEY),
        tokens_file=tokens_file, mappings_dir=MAPPINGS,
        store_url=f"sqlite:///{tmp_path}/store.sqlite3"), transport, transport)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        answer = await proxy.get(f"/api/v2/plans/{plan}/{route}?per_page=20",
                                 headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200  # the primary side answered records
        await app.state.bridge.shadow.queue.join()
        rows = app.state.bridge.usage.store.comparisons()
    (row,) = rows
    assert not row.agrees and {row.legacy_status, row.bridge_status} == {200, 401}
    stored = row.differences + (row.golden or "")
    assert "@" not in stored  # no e-mail, on any side, in differences or the golden case
    assert "records" in row.differences  # the list is summarized, not stored
