"""The token table reloaded while serving: on a file change and on SIGHUP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.auth import digest
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_PLAN_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import MAPPINGS, free_port

USERS = f"/api/v2/plans/{DEMO_PLAN_ID}/users?per_page=2"
NEW_TOKEN = "token-added-while-serving"


def table(*tokens: str) -> str:
    return "".join(f'[[tokens]]\nlabel = "client-{n}"\nsha256 = "{digest(t)}"\n'
                   f'plans = ["*"]\n\n' for n, t in enumerate(tokens))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "not reloaded in time"
        await asyncio.sleep(0.02)


async def test_a_changed_file_is_reloaded_without_dropping_requests_in_flight(
        make_proxy: Callable[..., Starlette], emulator: httpx.AsyncClient,
        tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(table(DEMO_PLAN_TOKEN))
    app = make_proxy(tokens_file=tokens, tokens_reload_seconds=0.05)
    await emulator.post("/_emulator/latency", json={"ms": 200})
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        assert (await proxy.get(USERS, headers=auth(NEW_TOKEN))).status_code == 401
        in_flight = [asyncio.create_task(proxy.get(USERS, headers=auth(DEMO_PLAN_TOKEN)))
                     for _ in range(5)]
        tokens.write_text(table(DEMO_PLAN_TOKEN, NEW_TOKEN))

        async def reloaded() -> bool:
            return bool(app.state.token_reloader.reloads)

        await until(reloaded)
        added = await proxy.get(USERS, headers=auth(NEW_TOKEN))
        answers = await asyncio.gather(*in_flight)
    assert [a.status_code for a in answers] == [200] * 5
    assert added.status_code == 200


async def test_a_broken_new_file_keeps_the_old_table_and_says_why(
        make_proxy: Callable[..., Starlette], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(table(DEMO_PLAN_TOKEN))
    app = make_proxy(tokens_file=tokens, tokens_reload_seconds=0.05)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        reloader = app.state.token_reloader
        tokens.write_text('[[tokens]]\nlabel = "x"\nsha256 = "not hex"\n')
        await asyncio.sleep(0.3)  # several checks
        still = await proxy.get(USERS, headers=auth(DEMO_PLAN_TOKEN))
        assert reloader.reloads == 0 and still.status_code == 200
        assert reloader.reload("test") is False  # unchanged since: nothing to do
    said = [r.getMessage() for r in caplog.records if "not reloaded" in r.getMessage()]
    assert len(said) == 1 and "tokens.0.sha256" in said[0]  # once, with the reason


def test_sighup_reloads_the_table_of_a_served_proxy(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str],
        tmp_path: Path) -> None:
    upstream = serve_http(emulator_app)
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(table(DEMO_PLAN_TOKEN))
    port = free_port()
    env = {**os.environ, "BRIDGE_UPSTREAM_URL": upstream, "BRIDGE_UPSTREAM_API_KEY": DEMO_API_KEY,
           "BRIDGE_TOKENS_FILE": str(tokens), "BRIDGE_MAPPINGS_DIR": str(MAPPINGS),
           "BRIDGE_PORT": str(port), "BRIDGE_STORE_URL": f"sqlite:///{tmp_path}/s.sqlite3",
           "BRIDGE_TOKENS_RELOAD_SECONDS": "0", "BRIDGE_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "legacy_bridge", "serve"], env=env)
    url = f"http://127.0.0.1:{port}{USERS}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                before = httpx.get(url, headers=auth(NEW_TOKEN))
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert before.status_code == 401
        tokens.write_text(table(DEMO_PLAN_TOKEN, NEW_TOKEN))
        time.sleep(0.3)  # no polling: only the signal reloads
        assert httpx.get(url, headers=auth(NEW_TOKEN)).status_code == 401
        process.send_signal(signal.SIGHUP)
        while httpx.get(url, headers=auth(NEW_TOKEN)).status_code != 200:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=20)
