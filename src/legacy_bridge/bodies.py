"""Reading a request body the way every surface must: bounded in size and in time."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from legacy_bridge.errors import BridgeError


async def read_body(request: Request, limit: int, deadline: float,
                    error: type[BridgeError], what: str) -> bytes:
    """The body, refused (`error`) past `limit` bytes without reading the rest, or when
    it has not all arrived within `deadline` seconds: a trickling client holds nothing."""
    body = b""
    try:
        async with asyncio.timeout(deadline):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise error(f"{what} is longer than {limit} bytes")
    except TimeoutError:
        raise error(f"{what} did not arrive within {deadline:g} s") from None
    return body
