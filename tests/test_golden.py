"""Golden cases: legacy request -> GraphQL variables sent -> upstream reply -> legacy body.

Each case in tests/golden/ is data; respx plays the upstream and checks the
exact request the proxy sends (operation, variables, no value spliced into
the query text).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import respx
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from legacy_bridge.pagination import query_key
from support import routed

CASES = sorted((Path(__file__).parent / "golden").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
async def test_golden_case(path: Path, make_proxy: Callable[..., Starlette]) -> None:
    case: dict[str, Any] = json.loads(path.read_text())
    response = await replay(case, make_proxy)
    assert response.status_code == case["response"]["status"]
    assert response.content == orjson.dumps(case["response"]["body"])


async def replay(case: dict[str, Any], make_proxy: Callable[..., Starlette]) -> httpx.Response:
    """The proxy's answer to the case's request, with respx playing its upstream."""
    expected = iter(case["upstream"])

    def upstream(request: httpx.Request) -> httpx.Response:
        step = next(expected)
        sent = json.loads(request.content)
        assert request.url.path == step["endpoint"]
        assert request.headers["authorization"] == "Token demo-company-key"
        assert sent["operationName"] == step["operationName"]
        assert sent["variables"] == step["variables"]
        for value in _scalars(step["variables"]):
            assert str(value) not in sent["query"]
        return httpx.Response(200, json=step["reply"])

    with respx.mock(base_url="http://upstream") as mock:
        mock.post().mock(side_effect=upstream)
        app = make_proxy(transport=routed(mock))
        if "checkpoint" in case:  # exported from a page read that began at a checkpoint
            bridge = app.state.bridge
            compiled, legacy = bridge.resolve(case["request"]["url"])
            await bridge.checkpoints.store(
                query_key(bridge.auth.key_scope, compiled.route.endpoint, legacy.variables),
                case["checkpoint"]["offset"], case["checkpoint"]["after"])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://proxy") as proxy:
            # an exported case names no token, only that it needs company scope
            token = case["request"].get("token", DEMO_COMPANY_TOKEN)
            response = await proxy.get(case["request"]["url"],
                                       headers={"Authorization": f"Bearer {token}"})
    assert next(expected, None) is None, "fewer upstream requests than the case expects"
    return response


def _scalars(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    return [value] if isinstance(value, str) and len(value) > 3 else []
