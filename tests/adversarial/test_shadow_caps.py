"""Issue 14, item 6: what the shadow queue holds is bounded by the answer size cap."""

from __future__ import annotations

from pathlib import Path

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from legacy_bridge.app import create_app
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.settings import Settings
from support import MAPPINGS

AUTH = {"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}
BIG = b'{"results": [' + b",".join([b'{"user_key": "x"}'] * 200) + b'], "total": 200}'


def _proxy(upstream: Starlette, tokens_file: Path, tmp_path: Path, primary: str,
           old_api: httpx.AsyncBaseTransport) -> Starlette:
    settings = Settings(upstream_url="http://upstream", legacy_url="http://old-api",
                        mode="shadow", shadow_primary=primary,
                        upstream_max_response_bytes=1024,
                        upstream_api_key=SecretStr(DEMO_API_KEY), tokens_file=tokens_file,
                        mappings_dir=MAPPINGS, store_url=f"sqlite:///{tmp_path}/s.sqlite3")
    return create_app(settings, httpx.ASGITransport(app=upstream), old_api)


def _old_api(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, stream=httpx.ByteStream(BIG),
                          headers={"Content-Type": "application/json"})


async def _ask(app: Starlette) -> tuple[httpx.Response, int, int]:
    """The answer, the comparisons dropped, and those stored."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        answer = await proxy.get(f"/api/v2/plans/{DEMO_PLAN_ID}/users?per_page=1",
                                 headers=AUTH)
        await app.state.bridge.shadow.queue.join()
        return (answer, app.state.bridge.shadow.dropped,
                len(app.state.bridge.usage.store.comparisons()))


async def test_a_legacy_answer_past_the_cap_is_served_but_not_queued(
        emulator_app: Starlette, tokens_file: Path, tmp_path: Path) -> None:
    app = _proxy(emulator_app, tokens_file, tmp_path, "legacy", httpx.MockTransport(_old_api))
    answer, dropped, stored = await _ask(app)
    assert answer.status_code == 200 and answer.content == BIG  # the client gets it whole
    assert (dropped, stored) == (1, 0)


async def test_a_legacy_answer_past_the_cap_is_not_read_for_a_comparison(
        emulator_app: Starlette, tokens_file: Path, tmp_path: Path) -> None:
    app = _proxy(emulator_app, tokens_file, tmp_path, "graphql", httpx.MockTransport(_old_api))
    answer, _, stored = await _ask(app)
    assert answer.status_code == 200 and len(answer.content) < 1024  # the translation's
    assert stored == 0  # the oversized legacy answer was not compared
