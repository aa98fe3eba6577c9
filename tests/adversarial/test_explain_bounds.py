"""Issue 14, item 3: /_bridge/explain grew with the page number until the process died."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import ADMIN_TOKEN, legacy

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.mark.parametrize("page", [2_000_000, 999_999_999, 2_147_483_647])
async def test_a_page_past_the_walk_cap_is_the_routes_400_not_megabytes(
        proxy: httpx.AsyncClient, page: int) -> None:
    url = f"/api/v2/plans/{DEMO_PLAN_ID}/users?page={page}&per_page=100"
    answer = await proxy.get(f"/_bridge/explain?url={quote(url, safe='')}", headers=ADMIN)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "page_too_deep"
    assert len(answer.content) < 1000


async def test_the_walk_is_a_count_and_a_loop_not_a_list(proxy: httpx.AsyncClient) -> None:
    url = f"/api/v2/plans/{DEMO_PLAN_ID}/users?page=901&per_page=100"  # 900 requests deep
    answer = await proxy.get(f"/_bridge/explain?url={quote(url, safe='')}", headers=ADMIN)
    walk = answer.json()["pagination"]["cursor_only"]
    assert (walk["requests"], walk["first"], walk["last_first"]) == (900, 100, 100)
    assert len(answer.content) < 20_000
    assert "[100] * 899 + [100]" in answer.json()["python"]
    route = await legacy(proxy, "users", "page=901&per_page=100")
    assert route.status_code == 200  # the route answers the same page (empty: past the end)
