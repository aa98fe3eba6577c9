"""Issue 14, item 6: the Data API checks the token before the body, and reads it in time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from starlette.applications import Starlette
from starlette.types import Message

from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN, DEMO_PLAN_TOKEN
from support import DATA_API


async def test_a_large_body_without_a_token_is_401(
        proxy: httpx.AsyncClient, upstream_counts: Callable[[], dict[str, int]]) -> None:
    answer = await proxy.post(DATA_API, content=b"x" * 70_000,
                              headers={"Content-Type": "text/plain"})
    assert answer.status_code == 401
    assert upstream_counts() == {}


async def test_a_plan_token_is_403_before_its_body_is_read(proxy: httpx.AsyncClient) -> None:
    answer = await proxy.post(DATA_API, content=b"x" * 70_000, headers={
        "Content-Type": "text/plain", "Authorization": f"Bearer {DEMO_PLAN_TOKEN}"})
    assert answer.status_code == 403


async def test_a_body_that_trickles_past_the_deadline_is_refused_in_time(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(total_deadline=0.2)
    sent: list[Message] = []
    chunks = iter([b"SELECT email ", b"FROM roster_v1"])

    async def receive() -> Message:
        chunk = next(chunks, None)
        if chunk is None:
            await asyncio.Event().wait()  # the rest never comes
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": DATA_API, "raw_path": DATA_API.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("proxy", 80), "headers": [
                 (b"authorization", f"Bearer {DEMO_COMPANY_TOKEN}".encode()),
                 (b"content-type", b"text/plain")]}
    await asyncio.wait_for(app(scope, receive, send), 10)  # bounded by the deadline, not 10 s
    assert sent[0]["status"] == 400
    assert b"did not arrive within 0.2 s" in sent[1]["body"]
