"""Issue 14, item 4: a cancelled caller must not fail the callers sharing its request."""

from __future__ import annotations

import asyncio

import httpx
import respx

from legacy_bridge.query import Document
from legacy_bridge.upstream import Policy, Upstream
from support import routed

ENDPOINT = "/api/public/api/v1/program-progress/graphql"
DOC = Document("query LegacyProgress($input: ProgramProgressInput!) { x }", "LegacyProgress")
VARIABLES = {"input": {"first": 1}}


async def test_followers_take_over_when_the_leader_is_cancelled() -> None:
    sent = asyncio.Event()
    release = asyncio.Event()
    arrived = 0

    async def upstream(request: httpx.Request) -> httpx.Response:
        nonlocal arrived
        arrived += 1
        sent.set()
        await release.wait()
        return httpx.Response(200, json={"data": {"x": 1}})

    with respx.mock(base_url="http://up") as mock:
        mock.post(ENDPOINT).mock(side_effect=upstream)
        client = Upstream("http://up", Policy(timeout=5, retries=0), routed(mock))
        leader = asyncio.create_task(client.query(ENDPOINT, DOC, VARIABLES, "k"))
        await sent.wait()  # the leader's request is on the wire
        followers = [asyncio.create_task(client.query(ENDPOINT, DOC, VARIABLES, "k"))
                     for _ in range(3)]
        await asyncio.sleep(0)  # the followers are now waiting on the leader's answer
        assert client.coalesced == 3
        leader.cancel()  # its client went away
        for _ in range(1000):  # one follower takes over and sends it again
            if arrived == 2 or all(f.done() for f in followers):
                break
            await asyncio.sleep(0)
        for _ in range(5):  # the other two are waiting on it, not sending their own
            await asyncio.sleep(0)
        release.set()
        answers = await asyncio.gather(*followers)
        await client.aclose()
    assert answers == [{"x": 1}] * 3
    assert leader.cancelled()
    assert arrived == 2  # the abandoned request, then one for all three followers
    assert client.coalesced == 5
