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


def _connection_named(values: list[str]) -> set[str]:
    """Headers a `Connection` header names are hop-by-hop too (RFC 9110 7.6.1)."""
    return {name.strip().lower() for value in values for name in value.split(",")}


class LegacyRelay:
    def __init__(self, base_url: str, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout,
                                         transport=transport)

    def _request(self, request: Request, body: bytes | None) -> httpx.Request:
        """The request as the old API gets it: the path as the client wrote it (never
        decoded, so `%2E%2E` stays a name, not a step up), no hop-by-hop headers nor
        those `Connection` names, the client appended to X-Forwarded-For, and the
        proxy's cleaned request id."""
        # Content-Length follows the body the proxy sends, not the one it was sent.
        dropped = HOP | _connection_named(request.headers.getlist("connection")) | {
            "content-length", "x-forwarded-for", "x-request-id"}
        headers = [(k, v) for k, v in request.headers.raw if k.decode().lower() not in dropped]
        forwarded = [*request.headers.getlist("x-forwarded-for"),
                     request.client.host if request.client else "unknown"]
        headers.append((b"x-forwarded-for", ", ".join(forwarded).encode("latin-1")))
        stats = logs.current.get()
        if stats is not None:
            headers.append((b"x-request-id", stats.request_id.encode()))
        path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        return self._client.build_request(request.method, path, params=request.url.query,
                                          headers=headers, content=body)

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
        dropped = HOP | _connection_named(upstream.headers.get_list("connection"))
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
        return StreamingResponse(upstream.aiter_raw(), upstream.status_code, headers,
                                 background=BackgroundTask(upstream.aclose))

    async def fetch(self, request: Request, body: bytes | None = None,
                    max_bytes: int | None = None) -> Relayed:
        """The whole answer; past `max_bytes` (a comparison's copy) UpstreamError."""
        upstream = await self._send(request, body, stream=True)
        try:
            content = bytearray()
            async for chunk in upstream.aiter_bytes():
                content += chunk
                if max_bytes is not None and len(content) > max_bytes:
                    raise UpstreamError(f"the legacy answer is larger than {max_bytes} bytes")
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the legacy API did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("the legacy API's answer broke off") from exc
        finally:
            await upstream.aclose()
        dropped = HOP | _connection_named(upstream.headers.get_list("connection")) | {
            "content-length", "content-encoding"}
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
        return Relayed(upstream.status_code, bytes(content), headers)

    async def aclose(self) -> None:
        await self._client.aclose()
