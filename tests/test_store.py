"""The store, against SQLite and a real PostgreSQL: one contract, two engines."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.errors import ConfigError
from legacy_bridge.store import ComparisonRow, Store, UsageRow
from legacy_bridge.usage import Usage
from support import ADMIN_TOKEN, legacy


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.sqlite3"
    server: str = request.getfixturevalue("postgres_server")
    return server


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = Store(store_url, keep_comparisons=5, keep_days=1)
    with store._lock:  # a clean slate on the shared server
        store._db.execute("DELETE FROM usage")
        store._db.execute("DELETE FROM comparisons")
        store._db.commit()
    yield store
    store.close()


def _now(days: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_usage_counts_add_up_and_keep_the_latest_time(store: Store) -> None:
    store.add_usage([UsageRow("a", "users", "request", "", 2, "2026-01-01T00:00:00Z")])
    store.add_usage([UsageRow("a", "users", "request", "", 3, "2026-02-01T00:00:00Z"),
                     UsageRow("b", "users", "param", "page", 1, "2026-01-05T00:00:00Z")])
    store.add_usage([UsageRow("a", "users", "request", "", 1, "2025-12-01T00:00:00Z")])
    assert store.usage() == [
        UsageRow("a", "users", "request", "", 6, "2026-02-01T00:00:00Z"),
        UsageRow("b", "users", "param", "page", 1, "2026-01-05T00:00:00Z")]


def test_comparisons_are_kept_by_count_and_age(store: Store) -> None:
    store.add_comparison(ComparisonRow(_now(days=2), "users", "/old", 200, 200, True, "[]"))
    for i in range(7):
        store.add_comparison(ComparisonRow(_now(), "users", f"/r{i}", 200, 502, False,
                                           '[{"path": "(status)"}]'))
    rows = store.comparisons()
    assert [r.request for r in rows] == ["/r2", "/r3", "/r4", "/r5", "/r6"]
    assert all(not r.agrees and r.bridge_status == 502 for r in rows)
    assert store.comparisons(route="progress") == []
    assert store.comparisons(since=_now(days=-1)) == []


async def test_shutdown_waits_for_a_write_whose_flush_was_cancelled(tmp_path: Path) -> None:
    # The periodic flush is cancelled at shutdown while its thread may be
    # writing; closing SQLite under that thread used to crash the process.
    url = f"sqlite:///{tmp_path}/store.sqlite3"
    store, entered, release = Store(url), threading.Event(), threading.Event()
    add_usage = store.add_usage

    def slow_add_usage(rows: list[UsageRow]) -> None:
        entered.set()
        release.wait(5)
        add_usage(rows)

    store.add_usage = slow_add_usage  # type: ignore[method-assign]
    usage = Usage(store)
    usage.record("a", "users", ["page"], [])
    flush = asyncio.create_task(usage.flush())
    await asyncio.to_thread(entered.wait, 5)
    flush.cancel()
    closing = asyncio.create_task(store.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()
    release.set()
    await closing
    reopened = Store(url)
    assert [(r.kind, r.name, r.count) for r in reopened.usage()] == [
        ("param", "page", 1), ("request", "", 1)]
    reopened.close()


def test_a_store_written_by_an_older_proxy_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:  # the comparisons table before `golden`
        old.execute("CREATE TABLE comparisons (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "at TEXT NOT NULL, route TEXT NOT NULL, request TEXT NOT NULL, "
                    "legacy_status INTEGER NOT NULL, bridge_status INTEGER NOT NULL, "
                    "agrees INTEGER NOT NULL, differences TEXT NOT NULL)")
        old.execute("INSERT INTO comparisons VALUES (1, ?, 'users', '/old', 200, 200, 1, '[]')",
                    (_now(),))
    old.close()
    store = Store(f"sqlite:///{path}")
    store.add_comparison(ComparisonRow(_now(), "users", "/new", 200, 502, False, "[]", "{}"))
    assert [(r.request, r.golden) for r in store.comparisons()] == [
        ("/old", None), ("/new", "{}")]
    store.close()


def test_a_postgresql_store_written_by_an_older_proxy_gains_the_new_columns(
        postgres_server: str) -> None:
    old = Store(postgres_server)
    with old._lock:
        old._db.execute("DELETE FROM comparisons")
        old._db.execute("ALTER TABLE comparisons DROP COLUMN golden")
        old._db.commit()
    old.close()
    store = Store(postgres_server)
    store.add_comparison(ComparisonRow(_now(), "users", "/new", 200, 502, False, "[]", "{}"))
    assert [(r.request, r.golden) for r in store.comparisons()] == [("/new", "{}")]
    store.close()


def test_unknown_store_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="BRIDGE_STORE_URL"):
        Store("mysql://db/x")


async def test_replicas_share_one_postgresql_store(
        make_proxy: Callable[..., Starlette], postgres_server: str) -> None:
    first, second = (make_proxy(store_url=postgres_server) for _ in range(2))
    with first.state.bridge.usage.store._lock:
        first.state.bridge.usage.store._db.execute("DELETE FROM usage")
        first.state.bridge.usage.store._db.commit()
    for app, pages in ((first, 2), (second, 3)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://proxy") as proxy:
            for page in range(1, pages + 1):
                await legacy(proxy, "users", f"page={page}")
            await app.state.bridge.usage.flush()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=first),
                                 base_url="http://proxy") as proxy:
        rows = (await proxy.get("/_bridge/usage.json",
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
    for app in (first, second):
        app.state.bridge.usage.store.close()
    counts = {(r["client"], r["kind"], r["name"]): r["count"] for r in rows}
    assert counts[("demo-plan", "request", "")] == 5
    assert counts[("demo-plan", "param", "page")] == 5
