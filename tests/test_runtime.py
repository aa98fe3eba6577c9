"""Modes set while serving: obeyed by every replica, canaries sticky per client, audited."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from click.testing import CliRunner
from starlette.applications import Starlette

from legacy_bridge.cli import main
from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.runtime import bucket
from support import ADMIN_TOKEN, MAPPINGS

USERS = f"/api/v2/plans/{DEMO_PLAN_ID}/users?per_page=2"
AUTH = {"Authorization": f"Bearer {DEMO_COMPANY_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")


def test_a_canary_share_holds_within_binomial_bounds_and_is_sticky() -> None:
    labels = [f"client-{n}" for n in range(2000)]
    inside = sum(bucket(label, "users") < 20 for label in labels)
    # mean 400, standard deviation sqrt(2000 * 0.2 * 0.8) = 17.9: four of them either way
    assert 400 - 72 <= inside <= 400 + 72
    # sticky: a client's place is a function of its label and the route alone
    assert [bucket(label, "users") for label in labels[:50]] == [
        bucket(label, "users") for label in labels[:50]]


async def test_a_mode_set_on_one_replica_is_obeyed_by_another(
        make_proxy: Callable[..., Starlette], upstream_counts: Callable[[], dict[str, int]],
        postgres_server: str) -> None:
    import psycopg

    replicas = [make_proxy(store_url=postgres_server, legacy_url="http://upstream",
                           mode_refresh_seconds=0.05) for _ in range(2)]
    with psycopg.connect(postgres_server, autocommit=True) as db:  # the shared server
        db.execute("DELETE FROM route_modes")
        db.execute("DELETE FROM mode_audit")
    async with replicas[0].router.lifespan_context(replicas[0]), \
            replicas[1].router.lifespan_context(replicas[1]), \
            client(replicas[0]) as first, client(replicas[1]) as second:
        assert (await second.get(USERS, headers=AUTH)).status_code == 200
        translated = upstream_counts().get("learning-plan-progress", 0)
        assert translated > 0
        answer = await first.post("/_bridge/modes", headers=ADMIN, json={
            "route": "users", "mode": "legacy", "who": "ops-alice"})
        assert answer.json()["routes"]["users"]["mode"] == "legacy"
        deadline = time.monotonic() + 5
        while "users" not in replicas[1].state.bridge.board.settings:
            assert time.monotonic() < deadline, "the second replica did not follow"
            await asyncio.sleep(0.02)
        relayed = await second.get(USERS, headers=AUTH)
        assert relayed.status_code == 200
        assert upstream_counts().get("learning-plan-progress", 0) == translated  # relayed
        audit = (await second.get("/_bridge/modes", headers=ADMIN)).json()["changes"]
        page = (await second.get("/_bridge/compare", headers=ADMIN)).text
    assert audit[0]["who"] == "ops-alice" and audit[0]["to_mode"] == "legacy"
    assert audit[0]["from_mode"] is None
    assert "ops-alice" in page and "Mode changes" in page


async def test_a_canary_of_0_percent_sends_everyone_to_the_old_api(
        make_proxy: Callable[..., Starlette], upstream_counts: Callable[[], dict[str, int]],
        tmp_path: Path) -> None:
    app = make_proxy(legacy_url="http://upstream", mode_refresh_seconds=0.05)
    async with app.router.lifespan_context(app), client(app) as proxy:
        await proxy.post("/_bridge/modes", headers=ADMIN,
                         json={"route": "users", "mode": "graphql", "percent": 0})
        for _ in range(3):
            assert (await proxy.get(USERS, headers=AUTH)).status_code == 200
        assert upstream_counts().get("learning-plan-progress", 0) == 0
        await proxy.post("/_bridge/modes", headers=ADMIN,
                         json={"route": "users", "mode": "graphql", "percent": 100})
        await proxy.get(USERS, headers=AUTH)
        assert upstream_counts().get("learning-plan-progress", 0) > 0


async def test_a_bad_mode_change_is_refused(make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy()
    async with app.router.lifespan_context(app), client(app) as proxy:
        for change in ({"route": "nope", "mode": "legacy"},
                       {"route": "users", "mode": "sideways"},
                       {"route": "users", "mode": "legacy", "percent": 101}):
            assert (await proxy.post("/_bridge/modes", headers=ADMIN,
                                     json=change)).status_code == 400
        assert (await proxy.post("/_bridge/modes", json={})).status_code == 401


def test_mode_set_list_and_rollback_from_the_command_line(tmp_path: Path) -> None:
    store = ["--store-url", f"sqlite:///{tmp_path}/s.sqlite3", "--mappings-dir", str(MAPPINGS)]
    runner = CliRunner()
    assert runner.invoke(main, ["mode", "set", "users", "shadow", "--by", "bob",
                                *store]).exit_code == 0
    assert runner.invoke(main, ["mode", "set", "users", "graphql", "--percent", "10",
                                "--by", "bob", *store]).exit_code == 0
    listed = json.loads(runner.invoke(main, ["mode", "list", "--json", *store]).output)
    assert listed["routes"]["users"]["mode"] == "graphql"
    assert listed["routes"]["users"]["percent"] == 10
    rolled = runner.invoke(main, ["mode", "rollback", "users", "--by", "carol", *store])
    assert rolled.exit_code == 0 and "back to shadow" in rolled.output
    after = json.loads(runner.invoke(main, ["mode", "list", "--json", *store]).output)
    assert after["routes"]["users"]["mode"] == "shadow"
    assert [c["who"] for c in after["changes"]] == ["carol", "bob", "bob"]
    assert runner.invoke(main, ["mode", "set", "nope", "legacy", *store]).exit_code == 2
