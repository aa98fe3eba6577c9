"""The ASGI layers around every request, outermost first; each has one job.

    RequestLog    X-Request-ID (accepted or made, returned once), one JSON log
                  line and the request metrics
    Catchall      anything unexpected becomes the contract's JSON 500 body and a
                  log line with the traceback, never a plain-text page
    SizeGate      an oversized URL or header block is 400, before routing
    RouteHeaders  a route's own headers (deprecation signals) on its answers
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legacy_bridge import logs, tracing
from legacy_bridge.errors import BridgeError, InvalidParameter
from legacy_bridge.metrics import Metrics
from legacy_bridge.responses import json_response

log = logs.get("legacy_bridge.request")

Headers = list[tuple[bytes, bytes]]


def _route(scope: Scope) -> str | None:
    path: str | None = getattr(scope.get("route"), "path", None)
    return path


class RequestLog:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope["headers"]
                        if k == b"x-request-id"), None)
        stats = logs.RequestStats(logs.request_id(offered))
        token = logs.current.set(stats)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *((k, v) for k, v in message.get("headers", []) if k != b"x-request-id"),
                    (b"x-request-id", stats.request_id.encode())]
            await send(message)

        try:
            with tracing.request_span(scope["method"],
                                      tracing.trace_headers(scope["headers"])) as span:
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    span.set_attribute("http.route", _route(scope) or "unmatched")
                    span.set_attribute("http.response.status_code", status)
        finally:
            route = _route(scope)
            seconds = time.perf_counter() - started
            self.metrics.legacy(route or "unmatched", status, seconds)
            log.info("request", request_id=stats.request_id, method=scope["method"],
                     route=route, status=status, duration_ms=round(seconds * 1000, 2),
                     upstream_requests=stats.upstream_requests,
                     checkpoint_hits=stats.checkpoint_hits,
                     client=scope.get("state", {}).get("client"))
            logs.current.reset(token)


class Catchall:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            stats = logs.current.get()
            request_id = stats.request_id if stats else None
            log.exception("unexpected error", request_id=request_id, route=_route(scope))
            if started:  # the status is out: the server cuts the transfer off
                raise
            error = BridgeError("an unexpected error; the operators can find it by the "
                                f"request id {request_id}")
            await json_response(error.body(), error.status)(scope, receive, send)


class SizeGate:
    def __init__(self, app: ASGIApp, max_url_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_url_bytes, self.max_header_bytes = max_url_bytes, max_header_bytes

    def _oversized(self, scope: Scope) -> BridgeError | None:
        path = scope.get("raw_path") or scope["path"].encode()
        if len(path) + len(scope["query_string"]) > self.max_url_bytes:
            return InvalidParameter("the request URL is too long")
        if sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_header_bytes:
            return InvalidParameter("the request headers are too large")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = self._oversized(scope) if scope["type"] == "http" else None
        if error is None:
            await self.app(scope, receive, send)
        else:
            await json_response(error.body(), error.status)(scope, receive, send)


class RouteHeaders:
    def __init__(self, app: ASGIApp, headers: dict[str, Headers]) -> None:
        self.app, self.headers = app, headers  # by route template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = self.headers.get(_route(scope) or "", [])
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
