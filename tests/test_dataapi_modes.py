"""The Data API in the migration modes: legacy relay, graphql-fallback, shadow."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from support import DATA_API, MAPPINGS, sql_answer
from test_dataapi import SEED_003_ENROLLED, SEED_003_GRADUATED


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")


async def test_legacy_mode_relays_the_sql_to_the_old_data_api(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient,
        upstream_counts: Callable[[], dict[str, int]]) -> None:
    app = make_proxy(mode="legacy", legacy_url="http://upstream")
    async with client_for(app) as proxy:
        ours = await proxy.post(DATA_API, content=SEED_003_GRADUATED, headers={
            "authorization": f"Bearer {DEMO_COMPANY_TOKEN}", "content-type": "text/plain"})
    theirs = await emulator.post(DATA_API, content=SEED_003_GRADUATED, headers={
        "authorization": f"Bearer {DEMO_COMPANY_TOKEN}", "content-type": "text/plain"})
    assert (ours.status_code, ours.content) == (200, theirs.content)
    assert upstream_counts() == {}  # GraphQL untouched


async def test_sql_answered_by_the_old_data_api_counts_as_usage(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(mode="legacy", legacy_url="http://upstream")
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        await sql_answer(proxy, SEED_003_ENROLLED)
        await app.state.bridge.usage.flush()
        rows = app.state.bridge.usage.store.usage()
    assert [(r.client, r.route, r.kind, r.count) for r in rows] == [
        ("demo-company", "data-api", "request", 1)]


async def test_fallback_answers_sql_from_legacy_when_the_translation_fails(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient) -> None:
    app = make_proxy(mode="graphql-fallback", legacy_url="http://upstream", upstream_retries=0)
    async with client_for(app) as proxy:
        await emulator.post("/_emulator/faults", json={"kind": "http_500"})
        fallen = await sql_answer(proxy, SEED_003_ENROLLED)
        metrics = (await proxy.get("/metrics")).text
    assert fallen == await sql_answer(emulator, SEED_003_ENROLLED)
    assert 'bridge_fallbacks_total{route="data-api"} 1.0' in metrics


@pytest.mark.parametrize("primary", ["graphql", "legacy"])
async def test_shadow_compares_sql_answers_and_agrees_on_the_guides_examples(
        make_proxy: Callable[..., Starlette], primary: str) -> None:
    app = make_proxy(mode="shadow", legacy_url="http://upstream", shadow_primary=primary)
    bridge = app.state.bridge
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        for sql in (SEED_003_GRADUATED, SEED_003_ENROLLED):
            await sql_answer(proxy, sql)
        await bridge.shadow.queue.join()
        rows = bridge.usage.store.comparisons()
    assert [(r.route, r.agrees, r.legacy_status, r.bridge_status) for r in rows] == [
        ("data-api", True, 200, 200)] * 2
    assert all("sql sha256:" in r.request and "roster_v1" not in r.request for r in rows)


async def test_shadow_records_the_rows_a_wrong_table_loses(
        make_proxy: Callable[..., Starlette], tmp_path: Path) -> None:
    shortcut = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, shortcut)
    table = shortcut / "data-api.toml"
    table.write_text(table.read_text().replace('else = "completedAt", ', ""))
    app = make_proxy(mode="shadow", legacy_url="http://upstream", shadow_primary="legacy",
                     mappings_dir=shortcut)
    bridge = app.state.bridge
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        await sql_answer(proxy, SEED_003_GRADUATED)
        await bridge.shadow.queue.join()
        (row,) = bridge.usage.store.comparisons()
    assert not row.agrees
    assert '"path":"(row)"' in row.differences and '"legacy":"present x1"' in row.differences
    assert "@" not in row.differences  # e-mails are hashed unless BRIDGE_COMPARE_PII=keep


async def test_shadow_serves_csv_without_comparing(make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(mode="shadow", legacy_url="http://upstream", shadow_primary="legacy")
    bridge = app.state.bridge
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        answer = await proxy.post(DATA_API, json={"query": SEED_003_ENROLLED}, headers={
            "authorization": f"Bearer {DEMO_COMPANY_TOKEN}", "accept": "text/csv"})
        await bridge.shadow.queue.join()
        assert bridge.usage.store.comparisons() == []
    assert answer.status_code == 200
    assert answer.text.splitlines()[0] == "email,last_seen,enrollment_state"
