"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import respx

from legacy_bridge.auth import digest
from legacy_bridge.emulator.app import (
    DEMO_ADMIN_TOKEN,
    DEMO_ADMIN_USER,
    DEMO_API_KEY,
    DEMO_COMPANY_TOKEN,
    DEMO_LEARNER2_TOKEN,
    DEMO_LEARNER_TOKEN,
    DEMO_PLAN_TOKEN,
)
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID, DatasetSpec, plan_ids
from legacy_bridge.emulator.learning_path import ANA, BEN

SPEC = DatasetSpec(seed=7, learners=400, plans=3)
MAPPINGS = Path(__file__).resolve().parent.parent / "src" / "legacy_bridge" / "mappings"
OTHER_PLAN = plan_ids(SPEC)[1]
OTHER_PLAN_TOKEN = "other-plan-token"
ADMIN_TOKEN = "admin-token-for-tests"
TWO_PLANS_TOKEN = "two-plans-token"
# token -> (label, plans): the proxy's token table in tests
TOKENS = {
    DEMO_PLAN_TOKEN: ("demo-plan", [DEMO_PLAN_ID]),
    DEMO_COMPANY_TOKEN: ("demo-company", ["*"]),
    OTHER_PLAN_TOKEN: ("other-plan", [OTHER_PLAN]),
    TWO_PLANS_TOKEN: ("two-plans", [DEMO_PLAN_ID, OTHER_PLAN]),
}


# Seed 001's "Before (REST)" item, exactly as the migration guide prints it.
SEED_001_ITEM = {
    "learner_email": "j.martinez@acmecorp.com",
    "program_key": "nd00113",
    "program_version": "1.0.0",
    "stats": {"status": "enrolled", "total_projects": 5, "total_projects_completed": 3,
              "perc_concepts_completed": 65.0},
    "last_seen": "2026-03-10T14:30:00Z",
    "enrolled_at": "2025-11-01T09:00:00Z",
}


class FakeClock:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# course progress: token -> (label, user_id, role); learners' upstream authTokens
COURSE_USERS = {
    DEMO_LEARNER_TOKEN: ("ana", ANA, "learner"),
    DEMO_LEARNER2_TOKEN: ("ben", BEN, "learner"),
    DEMO_ADMIN_TOKEN: ("course-admin", DEMO_ADMIN_USER, "admin"),
}
LEARNERS = {ANA: "at-ana", BEN: "at-ben"}


def token_table(tokens: dict[str, tuple[str, list[str]]],
                users: dict[str, tuple[str, str, str]] | None = None) -> str:
    text = "".join(f'[[tokens]]\nlabel = "{label}"\nsha256 = "{digest(token)}"\n'
                   f"plans = {plans!r}\n\n".replace("'", '"')
                   for token, (label, plans) in tokens.items())
    return text + "".join(f'[[tokens]]\nlabel = "{label}"\nsha256 = "{digest(token)}"\n'
                          f'user_id = "{user}"\nrole = "{role}"\n\n'
                          for token, (label, user, role) in (users or {}).items())


def learners_table(learners: dict[str, str]) -> str:
    return "".join(f'[[learners]]\nuser_id = "{user}"\nauth_token = "{token}"\n\n'
                   for user, token in learners.items())
GRAPHQL = "/api/public/api/v1/{api}/graphql"
PLAN_AUTH = {"Authorization": f"Bearer {DEMO_PLAN_TOKEN}"}


async def graphql(client: httpx.AsyncClient, api: str, query: str,
                  variables: dict[str, Any] | None = None,
                  key: str = DEMO_API_KEY) -> httpx.Response:
    return await client.post(GRAPHQL.format(api=api),
                             json={"query": query, "variables": variables or {}},
                             headers={"Authorization": f"Token {key}"})


async def legacy(client: httpx.AsyncClient, route: str, query: str = "",
                 plan: str = DEMO_PLAN_ID, headers: dict[str, str] | None = None,
                 method: str = "GET") -> httpx.Response:
    url = f"/api/v2/plans/{plan}/{route}" + (f"?{query}" if query else "")
    return await client.request(method, url, headers=PLAN_AUTH if headers is None else headers)


DATA_API = "/api/emc/reports/query"


async def sql_answer(client: httpx.AsyncClient, query: str,
                     token: str = DEMO_COMPANY_TOKEN) -> dict[str, Any]:
    """The 200 JSON answer of the Data API (proxy or emulator) to one SQL statement."""
    answer = await client.post(DATA_API, json={"query": query},
                               headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def sql_refused(client: httpx.AsyncClient, query: str, code: str = "unsupported_sql",
                      token: str = DEMO_COMPANY_TOKEN) -> str:
    """The message of the Data API's 400 for one SQL statement, asserting the code."""
    answer = await client.post(DATA_API, json={"query": query},
                               headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code
    message: str = answer.json()["error"]["message"]
    return message


# -- a raw HTTP/1.1 server, for what a real socket does to the upstream client ----------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request off the connection, as sent: head and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    found = re.search(rb"content-length: (\d+)", head, re.I)
    return head + await reader.readexactly(int(found.group(1)) if found else 0)


@asynccontextmanager
async def server(handle: Handler, **options: Any) -> AsyncIterator[tuple[str, list[int]]]:
    """A raw HTTP/1.1 server on loopback in this event loop; yields (url, connections)."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listening = await asyncio.start_server(on_connect, "127.0.0.1", 0, **options)
    port = listening.sockets[0].getsockname()[1]
    scheme = "https" if options.get("ssl") else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}", accepted
    finally:
        listening.close()


def routed(router: respx.MockRouter) -> httpx.MockTransport:
    """respx's routes as the upstream client's transport: the proxy's own pool
    (legacy_bridge.http1) is not httpcore's, which respx patches. Each answer streams
    its raw bytes, as one off the wire does (a mocked one comes already read)."""
    async def handle(request: httpx.Request) -> httpx.Response:
        answer = await router.async_handler(request)
        return httpx.Response(answer.status_code, headers=answer.headers, stream=answer.stream,
                              extensions=answer.extensions)
    return httpx.MockTransport(handle)
