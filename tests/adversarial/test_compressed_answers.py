"""Issue 14, item 6: a compressed upstream answer is capped as it inflates, not after."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import httpx
import pytest
import respx

from legacy_bridge.errors import UpstreamError
from legacy_bridge.query import Document
from legacy_bridge.upstream import Policy, Upstream
from support import routed

ENDPOINT = "/api/public/api/v1/program-progress/graphql"
DOC = Document("query LegacyProgress($input: ProgramProgressInput!) { x }", "LegacyProgress")
CAP = 1024 * 1024
BOMB = gzip.compress(b" " * (64 * CAP))  # 64 MiB of spaces in about 64 KiB


class Stream(httpx.AsyncByteStream):
    """A body the upstream sends in pieces, as over the network (never read eagerly)."""

    def __init__(self, body: bytes, piece: int = 16384) -> None:
        self.body, self.piece = body, piece

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for at in range(0, len(self.body), self.piece):
            yield self.body[at:at + self.piece]


async def _query(reply: httpx.Response) -> dict[str, object]:
    with respx.mock(base_url="http://up") as mock:
        mock.post(ENDPOINT).mock(return_value=reply)
        client = Upstream("http://up", Policy(retries=0, max_response_bytes=CAP), routed(mock))
        try:
            return await client.query(ENDPOINT, DOC, {}, "k")
        finally:
            await client.aclose()


async def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    reply = httpx.Response(200, stream=Stream(BOMB), headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(UpstreamError, match="exceeded"):
            await _query(reply)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * CAP  # the answer never grew far past the cap (64 MiB inflated)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
async def test_compressed_answers_within_the_cap_are_read(encoding: str) -> None:
    body = b'{"data": {"x": 1}}'
    packed = {"gzip": gzip.compress, "deflate": zlib.compress,
              "identity": lambda b: b}[encoding](body)
    reply = httpx.Response(200, stream=Stream(packed, 7), headers={"Content-Encoding": encoding})
    assert await _query(reply) == {"x": 1}
