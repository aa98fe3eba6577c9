"""The old API behind the proxy: the relay for `legacy` mode, fallbacks and shadows.

The second outbound client, and like the GraphQL client the only place its
transport failures become domain errors: an old API that cannot be reached
is 502 `upstream_error`, one that does not answer in time 504
`upstream_timeout`, never an unhandled exception. Headers pass through except
the hop-by-hop ones (RFC 9110 7.6.1), which belong to each connection.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from legacy_bridge import logs
from legacy_bridge.errors import UpstreamError, UpstreamTimeout

log = logs.get("legacy_bridge.relay")

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailer", "transfer-encoding", "upgrade", "host"}


@dataclass(frozen=True)
class Relayed:
    """The old API's whole answer, with the headers to pass on."""

    status: int
    body: bytes
    headers: dict[str, str]


class LegacyRelay:
    def __init__(self, base_url: str, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout,
                                         transport=transport)

    def _request(self, request: Request, body: bytes | None) -> httpx.Request:
        # Content-Length follows the body the proxy sends, not the one it was sent.
        headers = [(k, v) for k, v in request.headers.raw
                   if k.decode().lower() not in HOP | {"content-length"}]
        return self._client.build_request(request.method, request.url.path,
                                          params=request.url.query, headers=headers,
                                          content=body)

    async def _send(self, request: Request, body: bytes | None,
                    stream: bool) -> httpx.Response:
        try:
            return await self._client.send(self._request(request, body), stream=stream)
        except httpx.TimeoutException as exc:
            log.warning("the legacy API did not answer in time", error=type(exc).__name__)
            raise UpstreamTimeout("the legacy API did not answer in time") from exc
        except httpx.HTTPError as exc:
            log.warning("the legacy API could not be reached", error=type(exc).__name__)
            raise UpstreamError("the legacy API could not be reached") from exc

    async def stream(self, request: Request, body: bytes | None = None) -> Response:
        """Relay one request (with `body`, already read by the proxy, for a POST)."""
        upstream = await self._send(request, body, stream=True)
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
        return StreamingResponse(upstream.aiter_raw(), upstream.status_code, headers,
                                 background=BackgroundTask(upstream.aclose))

    async def fetch(self, request: Request, body: bytes | None = None) -> Relayed:
        upstream = await self._send(request, body, stream=False)
        headers = {k: v for k, v in upstream.headers.items()
                   if k.lower() not in HOP | {"content-length", "content-encoding"}}
        return Relayed(upstream.status_code, upstream.content, headers)

    async def aclose(self) -> None:
        await self._client.aclose()
