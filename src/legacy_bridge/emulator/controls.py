"""Test controls of the emulator: injected faults, latency, request counts.

Served under `/_emulator/` only when the emulator runs with `--controls`;
counting itself is always on, since tests of the proxy assert exact upstream
request counts.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

FaultKind = Literal["http_500", "http_502", "http_503", "http_504", "http_429",
                    "http_401", "timeout", "malformed_json", "graphql_error", "drop"]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


@dataclass
class Fault:
    kind: str
    api: str | None = None  # None: any API
    operation: str | None = None  # None: any operation (operationName)
    until: float | None = None  # a time window (monotonic clock) instead of one request
    starts: float = 0.0  # a window may open later


class DroppedResponse(Response):
    """Announces a body, sends part of it, then abandons the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b'{"data": {', "more_body": True})
        raise ConnectionResetError("emulated dropped connection")


@dataclass
class Controls:
    enabled: bool = False
    latency_ms: float = 0.0
    timeout_seconds: float = 60.0
    retry_after: int = 7
    faults: deque[Fault] = field(default_factory=deque)
    counts: Counter[str] = field(default_factory=Counter)
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=2000))

    def record(self, api: str, body: dict[str, Any], request_id: str | None = None,
               auth_user: str | None = None, traceparent: str | None = None) -> None:
        """Count and log one request: the acting user and the trace it belongs to, never
        a token or key."""
        self.counts[api] += 1
        self.log.append({"api": api, "operationName": body.get("operationName"),
                         "variables": body.get("variables"), "requestId": request_id,
                         "auth_user": auth_user, "traceparent": traceparent})

    def take_fault(self, api: str, operation: str | None = None) -> Fault | None:
        now = time.monotonic()
        for fault in list(self.faults):
            if fault.until is not None and fault.until <= now:
                self.faults.remove(fault)  # an outage window that has ended
            elif (fault.api in (None, api) and fault.operation in (None, operation)
                  and fault.starts <= now):
                if fault.until is None:
                    self.faults.remove(fault)
                return fault
        return None

    async def delay(self) -> None:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)

    async def fault_response(self, fault: Fault) -> Response:
        """The HTTP answer of an injected fault."""
        kind = fault.kind
        if kind == "timeout":
            await asyncio.sleep(self.timeout_seconds)
            return JSONResponse({"errors": [{"message": "too late"}]}, status_code=504)
        if kind == "drop":
            return DroppedResponse()
        if kind == "malformed_json":
            return Response(b'{"data": {"unterminated', media_type="application/json")
        if kind == "graphql_error":
            return JSONResponse({"errors": [{"message": "internal resolver failure"}],
                                 "data": None})
        status = int(kind.removeprefix("http_"))
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else None
        return JSONResponse({"errors": [{"message": f"emulated HTTP {status}"}]},
                            status_code=status, headers=headers)

    # -- the /_emulator/ endpoints ------------------------------------------

    async def _faults(self, request: Request) -> Response:
        body = await request.json()
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            return JSONResponse({"error": f"kind must be one of {', '.join(FAULT_KINDS)}"},
                                status_code=400)
        if "seconds" in body:  # an outage: every request fails for that long
            starts = time.monotonic() + float(body.get("start_in", 0))
            self.faults.append(Fault(kind, body.get("api"), body.get("operation"),
                                     starts + float(body["seconds"]), starts))
        else:
            for _ in range(int(body.get("count", 1))):
                self.faults.append(Fault(kind, body.get("api"), body.get("operation")))
        if "timeout_seconds" in body:
            self.timeout_seconds = float(body["timeout_seconds"])
        return JSONResponse({"pending": len(self.faults)})

    async def _latency(self, request: Request) -> Response:
        self.latency_ms = float((await request.json()).get("ms", 0))
        return JSONResponse({"latency_ms": self.latency_ms})

    async def _counts(self, request: Request) -> Response:
        return JSONResponse({"counts": dict(self.counts), "total": self.counts.total()})

    async def _requests(self, request: Request) -> Response:
        return JSONResponse({"requests": list(self.log)})

    async def _reset(self, request: Request) -> Response:
        self.faults.clear()
        self.counts.clear()
        self.log.clear()
        self.latency_ms = 0.0
        return JSONResponse({"reset": True})

    def routes(self) -> list[Route]:
        return [
            Route("/_emulator/faults", self._faults, methods=["POST"]),
            Route("/_emulator/latency", self._latency, methods=["POST"]),
            Route("/_emulator/counts", self._counts, methods=["GET"]),
            Route("/_emulator/requests", self._requests, methods=["GET"]),
            Route("/_emulator/reset", self._reset, methods=["POST"]),
        ]
