"""One request's life, for every legacy surface: the migration mode around the translation.

A surface (the paged v2 routes, the Data API, ...) is what a mapping table
declares; it brings only its own steps, `Surface` below. `Pipeline.handle`
is the whole flow of one request, top to bottom: read what the relay must
forward, pick the mode, then translate, relay, or both; count what the old
API served; queue the comparison. A surface never dispatches modes itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response

from legacy_bridge import logs
from legacy_bridge.auth import Authenticator
from legacy_bridge.errors import (
    BridgeError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from legacy_bridge.metrics import Metrics
from legacy_bridge.modes import Mode, Primary
from legacy_bridge.ratelimits import ClientLimits
from legacy_bridge.relay import LegacyRelay
from legacy_bridge.responses import json_response
from legacy_bridge.runtime import ModeBoard
from legacy_bridge.shadow import Reply, Shadow, ShadowJob, Tape
from legacy_bridge.usage import Usage

# Failures of the translation's upstream that the old API may answer instead.
FALLBACK_ON = (UpstreamError, UpstreamUnavailable, UpstreamTimeout, RateLimited)

log = logs.get("legacy_bridge.pipeline")


@dataclass(frozen=True)
class Comparison:
    """How a surface compares its two answers to one request."""

    request: str  # what was asked, as stored: never a token
    diff: Callable[[Reply, Reply], tuple[bool, list[dict[str, object]]]]  # (legacy, bridge)
    golden: Callable[[Reply, Reply], str | None] | None = None


class Surface(Protocol):
    """What a legacy surface brings to the pipeline: its own steps, nothing else."""

    name: str  # for metrics, usage and the store
    mode: Mode | None  # the table's override of BRIDGE_MODE

    def admit(self, request: Request) -> object:
        """What must hold before the body is read when the proxy answers (the token)."""

    async def receive(self, request: Request) -> bytes | None:
        """The request body the relay forwards (None for a GET); read once."""

    async def translate(self, request: Request, body: bytes | None, tape: Tape | None = None,
                        count_usage: bool = True) -> Response:
        """authenticate -> parse -> scope -> plan -> execute -> rewrite -> respond."""

    def relayable(self, request: Request) -> None:
        """Raise InvalidParameter unless the path is one the old API may be sent: its
        parameters of the declared kinds, so nothing outside the routes is reached."""

    def relayed_params(self, request: Request) -> list[str]:
        """The declared parameters a relayed request used, for the usage report."""

    def comparison(self, request: Request, body: bytes | None) -> Comparison | None:
        """How to compare the two answers; None when this request is not compared."""


class Pipeline:
    def __init__(self, mode: Mode, primary: Primary, relay: LegacyRelay | None,
                 shadow: Shadow, usage: Usage, auth: Authenticator, metrics: Metrics,
                 limits: ClientLimits | None = None, board: ModeBoard | None = None) -> None:
        self.mode, self.primary = mode, primary
        self.relay, self.shadow, self.usage = relay, shadow, usage
        self.auth, self.metrics, self.limits, self.board = auth, metrics, limits, board

    def endpoint(self, surface: Surface) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            return await self.handle(surface, request)

        return handle

    async def handle(self, surface: Surface, request: Request) -> Response:
        limits = self.limits if self.limits is not None and self.limits.active else None
        steered = self.board is not None and surface.name in self.board.settings
        # the client's label (never its token), worked out once, only when needed
        label = (self.auth.label(request.headers.get("authorization"))
                 if limits is not None or steered else None)
        if limits is None or label is None:
            return await self._handle(surface, request, label)
        async with limits.hold(label):  # a client's own limits (429) before any work
            return await self._handle(surface, request, label)

    def _mode(self, surface: Surface, label: str | None) -> Mode:
        """The table's mode (or BRIDGE_MODE), unless an operator set one while serving
        (runtime.py), for this client's canary share."""
        default = surface.mode or self.mode
        if self.board is None or label is None or surface.name not in self.board.settings:
            return default
        mode = self.board.mode_for(surface.name, label, default)
        if mode != "graphql" and self.relay is None:
            log.error("runtime mode needs BRIDGE_LEGACY_URL; translating instead",
                      route=surface.name, mode=mode)
            return "graphql"
        return mode

    async def _handle(self, surface: Surface, request: Request, label: str | None
                      ) -> Response:
        mode = self._mode(surface, label)
        if mode in ("graphql", "graphql-fallback") or (
                mode == "shadow" and self.primary == "graphql"):
            surface.admit(request)  # the proxy answers: no body is read for a stranger
        body = await surface.receive(request)
        if mode == "graphql":
            return await surface.translate(request, body)
        relay = self.relay
        assert relay is not None  # create_app refuses these modes without BRIDGE_LEGACY_URL
        if mode == "legacy":
            surface.relayable(request)
            streamed = await relay.stream(request, body)
            self._count_relayed(surface, request, streamed.status_code)
            return streamed
        if mode == "graphql-fallback":
            try:
                return await surface.translate(request, body)
            except FALLBACK_ON as exc:
                surface.relayable(request)
                self.metrics.fallbacks.labels(surface.name).inc()
                log.warning("translation failed upstream; answered from legacy",
                            route=surface.name, code=exc.code)
                return await self._relayed(surface, request, body, relay)
        return await self._shadowed(surface, request, body, relay)

    async def _shadowed(self, surface: Surface, request: Request, body: bytes | None,
                        relay: LegacyRelay) -> Response:
        if self.primary == "legacy":
            surface.relayable(request)
        else:
            try:
                surface.relayable(request)
            except BridgeError:  # the translation answers (400); nothing to compare with
                return await surface.translate(request, body)
        comparison = surface.comparison(request, body)
        if comparison is None:  # answered by the primary side alone
            if self.primary == "legacy":
                streamed = await relay.stream(request, body)
                self._count_relayed(surface, request, streamed.status_code)
                return streamed
            return await surface.translate(request, body)

        async def translated(count_usage: bool) -> tuple[Response, Reply]:
            tape = Tape()
            try:
                response = await surface.translate(request, body, tape, count_usage)
            except BridgeError as exc:  # errors are answers too, and compared
                response = json_response(exc.body(), exc.status, exc.headers)
            return response, Reply(response.status_code, bytes(response.body), tape)

        async def relayed() -> Reply:
            answer = await relay.fetch(request, body, self.shadow.max_body_bytes)
            return Reply(answer.status, answer.body)

        async def translated_reply() -> Reply:
            return (await translated(count_usage=False))[1]

        other: Callable[[], Awaitable[Reply]]
        if self.primary == "legacy":
            response = await self._relayed(surface, request, body, relay)
            answer, other = Reply(response.status_code, bytes(response.body)), translated_reply
        else:
            response, answer = await translated(count_usage=True)
            other = relayed
        self.shadow.offer(ShadowJob(surface.name, comparison.request, self.primary, answer,
                                    other, comparison.diff, comparison.golden))
        return response

    async def _relayed(self, surface: Surface, request: Request, body: bytes | None,
                       relay: LegacyRelay) -> Response:
        answer = await relay.fetch(request, body)
        self._count_relayed(surface, request, answer.status)
        return Response(answer.body, answer.status, answer.headers)

    def _count_relayed(self, surface: Surface, request: Request, status: int) -> None:
        """The old API answered: count the request, never a field (its body is not read)."""
        self.usage.record_relayed(self.auth.label(request.headers.get("authorization")),
                                  surface.name, surface.relayed_params(request), status)
