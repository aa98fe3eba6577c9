"""The proxy's ASGI app: legacy routes generated from the mapping tables.

`create_app(settings, transport=None)` loads and checks everything once;
`transport` lets tests put the emulator (or respx) under the upstream client.
One legacy request, top to bottom, is `Bridge.serve`:
validate -> plan pages -> query upstream -> join -> rewrite -> respond.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legacy_bridge import logs, openapi, params
from legacy_bridge.admin import admin_routes
from legacy_bridge.auth import Authenticator, Client, load_tokens
from legacy_bridge.dataapi import DataApiService
from legacy_bridge.errors import (
    BridgeError,
    ConfigError,
    InvalidParameter,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from legacy_bridge.joins import join_values
from legacy_bridge.mapping import Join, Route, VariablePath, load_mappings
from legacy_bridge.metrics import Metrics
from legacy_bridge.modes import (
    LegacyRelay,
    Reply,
    Shadow,
    ShadowJob,
    diff_answers,
    golden_case,
)
from legacy_bridge.pagination import (
    Answer,
    Fetch,
    MemoryCheckpoints,
    answer_of,
    query_key,
    read_page,
)
from legacy_bridge.query import Document, connection_document, input_variables
from legacy_bridge.redis_cache import RedisCheckpoints
from legacy_bridge.responses import json_response
from legacy_bridge.rewrite import Rewriter, compile_rewriter
from legacy_bridge.settings import Settings
from legacy_bridge.sqlmap import DataApi, load_data_api
from legacy_bridge.store import Store
from legacy_bridge.upstream import Policy, Tape, Upstream, recording
from legacy_bridge.usage import Usage


class RequestLog:
    """One JSON log line per request, and its X-Request-ID (accepted or made, returned).

    Also the first gate: an oversized URL or header block is answered 400 here,
    before routing, parsing or anything upstream.
    """

    def __init__(self, app: ASGIApp, max_url_bytes: int, max_header_bytes: int,
                 route_headers: dict[str, list[tuple[bytes, bytes]]], metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.route_headers = route_headers  # deprecation signals, by route template
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.log = logs.get("legacy_bridge.request")

    def _oversized(self, scope: Scope) -> BridgeError | None:
        path = scope.get("raw_path") or scope["path"].encode()
        if len(path) + len(scope["query_string"]) > self.max_url_bytes:
            return InvalidParameter("the request URL is too long")
        if sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_header_bytes:
            return InvalidParameter("the request headers are too large")
        return None

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
                route = scope.get("route")
                extra = self.route_headers.get(getattr(route, "path", ""), [])
                message["headers"] = [*message.get("headers", []), *extra,
                                      (b"x-request-id", stats.request_id.encode())]
            await send(message)

        try:
            error = self._oversized(scope)
            if error is None:
                await self.app(scope, receive, send_with_id)
            else:
                await json_response(error.body(), error.status)(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None)
            seconds = time.perf_counter() - started
            self.metrics.legacy(route or "unmatched", status, seconds)
            self.log.info(
                "request", request_id=stats.request_id, method=scope["method"],
                route=route, status=status, duration_ms=round(seconds * 1000, 2),
                upstream_requests=stats.upstream_requests,
                checkpoint_hits=stats.checkpoint_hits,
                client=scope.get("state", {}).get("client"))
            logs.current.reset(token)


log = logs.get("legacy_bridge.app")


def _operation_name(*parts: str) -> str:
    return "".join(p.replace("-", " ").title().replace(" ", "") for p in ("legacy", *parts))


@dataclass(frozen=True)
class CompiledRoute:
    """A route with everything a request needs prepared at start-up."""

    route: Route
    page: Document  # records of a page
    walk: Document  # cursors only, for reaching a deep page
    joins: dict[str, Document]
    rewriter: Rewriter
    always_fields: tuple[str, ...]  # legacy fields in every item
    optional_fields: tuple[tuple[tuple[str, ...], str], ...]  # omitted when null


def compile_route(route: Route) -> CompiledRoute:
    return CompiledRoute(
        route,
        connection_document(route.connection, _operation_name(route.name), route.node_fields),
        connection_document(route.connection, _operation_name(route.name, "walk"), ()),
        {name: connection_document(join.connection, _operation_name(route.name, name),
                                   join.node_fields)
         for name, join in route.joins.items()},
        compile_rewriter(route),
        tuple(".".join(f.path) for f in route.fields if "omit_if_null" not in f.transforms),
        tuple((f.path, ".".join(f.path)) for f in route.fields
              if "omit_if_null" in f.transforms),
    )


def resolve(routes: list[CompiledRoute], url: str) -> tuple[CompiledRoute, params.Request]:
    """The route a legacy path-and-query names, and its parsed parameters.

    For tools that take a legacy URL as data (explain, golden cases); raises
    NotFound or InvalidParameter like the route itself would.
    """
    parts = urlsplit(url)
    for compiled in routes:
        found = compile_path(compiled.route.path)[0].match(parts.path)
        if found:
            return compiled, params.parse(compiled.route, found.groupdict(),
                                          parse_qs(parts.query, keep_blank_values=True))
    raise NotFound(f"no legacy route matches {parts.path!r}")


def _returned_fields(compiled: CompiledRoute, items: list[dict[str, Any]]) -> list[str]:
    """The legacy fields this answer actually carried, for the usage report."""
    if not items:
        return []
    present = [name for path, name in compiled.optional_fields
               if any(_has(item, path) for item in items)]
    return [*compiled.always_fields, *present]


def _has(item: dict[str, Any], path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(item, dict) or part not in item:
            return False
        item = item[part]
    return True


class Bridge:
    def __init__(self, settings: Settings, routes: list[Route], authenticator: Authenticator,
                 transport: httpx.AsyncBaseTransport | None = None,
                 legacy_transport: httpx.AsyncBaseTransport | None = None,
                 data_api: DataApi | None = None) -> None:
        self.settings = settings
        self.routes = [compile_route(r) for r in routes]
        self.auth = authenticator
        self.checkpoints = _checkpoints(settings)
        self.metrics = Metrics(self._figures)
        api_of = {r.endpoint: r.api for r in routes}
        api_of.update({j.endpoint: j.api for r in routes for j in r.joins.values()})
        if data_api is not None:
            api_of[data_api.endpoint] = data_api.api
            if data_api.catalog is not None:
                api_of[data_api.catalog.endpoint] = data_api.catalog.api
        self.endpoints = sorted(api_of)

        def observe(endpoint: str, outcome: str, seconds: float) -> None:
            self.metrics.upstream_answer(api_of.get(endpoint, "other"), outcome, seconds)

        self.upstream = Upstream(settings.upstream_url, Policy(
            timeout=settings.upstream_timeout, connect_timeout=settings.upstream_connect_timeout,
            retries=settings.upstream_retries,
            backoff=settings.upstream_backoff, breaker_failures=settings.breaker_failures,
            breaker_reset=settings.breaker_reset, concurrency=settings.upstream_concurrency,
            queue_timeout=settings.upstream_queue_timeout,
            max_response_bytes=settings.upstream_max_response_bytes), transport, observe)
        store = Store(settings.store_url, settings.compare_keep, settings.compare_keep_days)
        self.usage = Usage(store)
        self.shadow = Shadow(store, self.metrics, settings.shadow_queue_size,
                             settings.shadow_sample_rate)
        self.legacy: LegacyRelay | None = None
        if settings.legacy_url:
            self.legacy = LegacyRelay(settings.legacy_url, settings.total_deadline,
                                      legacy_transport)
        modes = {c.route.mode or settings.mode for c in self.routes}
        if data_api is not None:
            modes.add(data_api.mode or settings.mode)
        if modes - {"graphql"} and self.legacy is None:
            raise ConfigError(f"BRIDGE_LEGACY_URL is required for mode "
                              f"{', '.join(sorted(modes - {'graphql'}))}")
        self._ready: tuple[float, bool, dict[str, str]] | None = None
        self.data_api = (DataApiService(data_api, self.upstream, authenticator, settings,
                                        self.usage, self.legacy, self.shadow, self.metrics)
                         if data_api else None)

    async def dispatch(self, request: Request, compiled: CompiledRoute) -> Response:
        """The route's migration mode decides who answers (see modes.py)."""
        mode = compiled.route.mode or self.settings.mode
        if mode == "graphql":
            return await self.serve(request, compiled)
        assert self.legacy is not None  # checked at start-up
        if mode == "legacy":
            response: Response = await self.legacy.stream(request)
            self._count_relayed(request, compiled.route, response.status_code)
            return response
        if mode == "graphql-fallback":
            try:
                return await self.serve(request, compiled)
            except (UpstreamError, UpstreamUnavailable, UpstreamTimeout, RateLimited) as exc:
                self.metrics.fallbacks.labels(compiled.route.name).inc()
                log.warning("translation failed upstream; answered from legacy",
                            route=compiled.route.name, code=exc.code)
                answer, headers = await self.legacy.fetch(request)
                self._count_relayed(request, compiled.route, answer.status)
                return Response(answer.body, answer.status, headers)
        return await self._shadowed(request, compiled)

    async def _shadowed(self, request: Request, compiled: CompiledRoute) -> Response:
        legacy = self.legacy
        assert legacy is not None

        async def translated() -> Reply:
            tape = Tape()
            token = recording.set(tape)
            try:
                response = await self.serve(request, compiled, count_usage=False)
            except BridgeError as exc:
                return Reply(exc.status, orjson.dumps(exc.body()), tape)
            finally:
                recording.reset(token)
            return Reply(response.status_code, bytes(response.body), tape)

        async def relayed() -> Reply:
            return (await legacy.fetch(request))[0]

        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if self.settings.shadow_primary == "legacy":
            answer, headers = await legacy.fetch(request)
            self._count_relayed(request, compiled.route, answer.status)
            response = Response(answer.body, answer.status, headers)
            other = translated
        else:
            tape = Tape()
            token = recording.set(tape)
            try:
                response = await self.serve(request, compiled)
            except BridgeError as exc:  # errors are answers too, and compared
                response = json_response(exc.body(), exc.status, exc.headers)
            finally:
                recording.reset(token)
            answer = Reply(response.status_code, bytes(response.body), tape)
            other = relayed
        keep_pii = self.settings.compare_pii == "keep"
        route = compiled.route
        self.shadow.offer(ShadowJob(
            route.name, target, self.settings.shadow_primary, answer, other,
            diff=lambda legacy, bridge: diff_answers(route, legacy, bridge, keep_pii),
            golden=lambda legacy, bridge: golden_case(route, target, legacy, bridge,
                                                      keep_pii)))
        return response

    def _count_relayed(self, request: Request, route: Route, status: int) -> None:
        self.usage.record_relayed(self.auth.label(request.headers.get("authorization")),
                                  route.name,
                                  [p for p in request.query_params if p in route.params],
                                  status)

    async def serve(self, request: Request, compiled: CompiledRoute,
                    count_usage: bool = True) -> Response:
        route = compiled.route
        # validate: token, then parameters, then plan scope; nothing went upstream yet
        client = self.auth.client(request.headers.get("authorization"))
        request.state.client = client.label
        query = {key: request.query_params.getlist(key) for key in request.query_params}
        legacy = params.parse(route, request.path_params, query)
        if legacy.plan is not None:
            client.check_plan(legacy.plan)
        try:
            async with asyncio.timeout(self.settings.total_deadline):
                # plan pages -> query upstream (checkpoints, cursor walk, retries)
                page = await read_page(
                    legacy.offset, legacy.per_page, max_first=route.max_first,
                    max_walk=self.settings.max_walk_requests, checkpoints=self.checkpoints,
                    query=query_key(client.scope, route.endpoint, legacy.variables),
                    fetch=self._fetcher(compiled, client, legacy), api=route.api)
                # join: one batched query per join for the whole page
                joined = await self._join(compiled, page.nodes, legacy, client)
                tape = recording.get()
                if tape is not None:
                    tape.checkpoint = page.start
        except TimeoutError:
            raise UpstreamTimeout("the upstream did not answer in time") from None
        # rewrite -> respond
        results = [compiled.rewriter.item(node, extra)
                   for node, extra in zip(page.nodes, joined, strict=True)]
        if count_usage:
            self.usage.record(client.label, route.name,
                              [p for p in query if p in route.params],
                              _returned_fields(compiled, results))
        return json_response({"results": results, "total": page.total,
                              "page": legacy.page, "per_page": legacy.per_page})

    def resolve(self, url: str) -> tuple[CompiledRoute, params.Request]:
        return resolve(self.routes, url)

    def _figures(self) -> dict[str, float]:
        cache = self.checkpoints
        return {"hits": cache.hits, "misses": cache.misses, "failures": cache.failures,
                "size": len(cache) if isinstance(cache, MemoryCheckpoints) else 0,
                "coalesced": self.upstream.coalesced}

    async def ready(self) -> tuple[bool, dict[str, str]]:
        """Is every upstream endpoint answering? Cached for BRIDGE_READY_CACHE_SECONDS."""
        now = time.monotonic()
        if self._ready is not None and now - self._ready[0] < self.settings.ready_cache_seconds:
            return self._ready[1], self._ready[2]
        key = self.auth.api_key if self.auth.mode == "tokens" else None
        answers = await asyncio.gather(*(self.upstream.probe(e, key) for e in self.endpoints))
        found = dict(zip(self.endpoints, answers, strict=True))
        ok = all(a == "ok" for a in answers)
        self._ready = (now, ok, found)
        return ok, found

    def _fetcher(self, compiled: CompiledRoute, client: Client,
                 legacy: params.Request) -> Fetch:
        route = compiled.route

        async def fetch(first: int, after: str | None, with_nodes: bool) -> Answer:
            document = compiled.page if with_nodes else compiled.walk
            variables = input_variables(legacy.variables, route.connection, first, after)
            data = await self.upstream.query(route.endpoint, document, variables,
                                             client.upstream_key)
            return answer_of(data, route.connection, with_nodes)

        return fetch

    async def _join(self, compiled: CompiledRoute, nodes: list[dict[str, Any]],
                    legacy: params.Request, client: Client) -> list[dict[tuple[str, str], Any]]:
        joined: list[dict[tuple[str, str], Any]] = [{} for _ in nodes]
        for name, join in compiled.route.joins.items():
            fetch_all = functools.partial(self._fetch_all, join, compiled.joins[name],
                                          client=client)
            values = await join_values(join, nodes, legacy.values, fetch_all)
            for item, extra in zip(joined, values, strict=True):
                item.update(extra)
        return joined

    async def _fetch_all(self, join: Join, document: Document,
                         variables: dict[VariablePath, Any], *,
                         client: Client) -> list[dict[str, Any]]:
        nodes: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            data = await self.upstream.query(
                join.endpoint, document,
                input_variables(variables, join.connection, join.max_first, after),
                client.upstream_key)
            answer = answer_of(data, join.connection, with_nodes=True)
            nodes += answer.nodes or []
            if not answer.has_next or not answer.cursors:
                return nodes
            after = answer.cursors[-1]

    def endpoint(self, compiled: CompiledRoute) -> Any:
        async def handle(request: Request) -> Response:
            return await self.dispatch(request, compiled)

        return handle


async def _bridge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BridgeError)
    return json_response(exc.body(), exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        data_api = request.app.state.bridge.data_api
        allowed = "POST" if data_api and request.url.path == data_api.api.path else "GET"
        error: BridgeError = MethodNotAllowed(f"only {allowed} is allowed", {"Allow": allowed})
    else:
        error = NotFound("no such route")
    return json_response(error.body(), error.status, error.headers)


def _checkpoints(settings: Settings) -> MemoryCheckpoints | RedisCheckpoints:
    if settings.cursor_cache == "memory":
        return MemoryCheckpoints(settings.cursor_cache_size, settings.cursor_cache_ttl)
    if settings.cursor_cache.startswith(("redis://", "rediss://", "unix://")):
        return RedisCheckpoints(settings.cursor_cache, settings.cursor_cache_ttl,
                                settings.cursor_cache_size)
    raise ConfigError("BRIDGE_CURSOR_CACHE must be `memory` or a redis:// URL")


def _authenticator(settings: Settings) -> Authenticator:
    if settings.auth_mode == "passthrough":
        return Authenticator("passthrough", (), None)
    if settings.tokens_file is None:
        raise ConfigError("BRIDGE_TOKENS_FILE is required when BRIDGE_AUTH_MODE=tokens "
                          "(or use BRIDGE_AUTH_MODE=passthrough)")
    key = settings.api_key()
    if not key:
        raise ConfigError("BRIDGE_UPSTREAM_API_KEY or BRIDGE_UPSTREAM_API_KEY_FILE is "
                          "required when BRIDGE_AUTH_MODE=tokens")
    return Authenticator("tokens", load_tokens(settings.tokens_file), key)


def create_app(settings: Settings, transport: httpx.AsyncBaseTransport | None = None,
               legacy_transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """The proxy, with its mappings loaded and checked; raises MappingError or ConfigError."""
    bridge = Bridge(settings, load_mappings(settings.mappings_dir), _authenticator(settings),
                    transport, legacy_transport, load_data_api(settings.mappings_dir))
    sql = bridge.data_api

    description = json_response(openapi.document(
        [c.route for c in bridge.routes], sql.api if sql else None))

    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, upstreams = await bridge.ready()
        return json_response({"status": "ready" if ok else "not ready", "mappings": "loaded",
                              "upstreams": upstreams}, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(bridge.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def openapi_json(request: Request) -> Response:
        return description

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        flusher = asyncio.create_task(bridge.usage.run(settings.usage_flush_seconds))
        shadow = asyncio.create_task(bridge.shadow.run())
        yield
        await bridge.shadow.drain(settings.shutdown_timeout / 2)
        shadow.cancel()
        flusher.cancel()
        await bridge.usage.flush()
        await bridge.usage.store.aclose()
        await bridge.upstream.aclose()
        if bridge.legacy is not None:
            await bridge.legacy.aclose()
        if isinstance(bridge.checkpoints, RedisCheckpoints):
            await bridge.checkpoints.aclose()

    routes = [StarletteRoute(c.route.path, bridge.endpoint(c), methods=["GET"])
              for c in bridge.routes]
    if sql is not None:
        routes.append(StarletteRoute(sql.api.path, sql.dispatch, methods=["POST"]))
    routes.append(StarletteRoute("/healthz", healthz, methods=["GET"]))
    routes.append(StarletteRoute("/readyz", readyz, methods=["GET"]))
    routes.append(StarletteRoute("/metrics", metrics, methods=["GET"]))
    routes.append(StarletteRoute("/openapi.json", openapi_json, methods=["GET"]))
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    routes += admin_routes(bridge, admin_token)
    logs.setup()
    route_headers = {c.route.path: [(k.lower().encode(), v.encode()) for k, v in c.route.headers]
                     for c in bridge.routes}
    gate = Middleware(RequestLog, max_url_bytes=settings.max_url_bytes,
                      max_header_bytes=settings.max_header_bytes, route_headers=route_headers,
                      metrics=bridge.metrics)
    app = Starlette(
        routes=routes, lifespan=lifespan, middleware=[gate],
        exception_handlers={BridgeError: _bridge_error, 404: _http_error, 405: _http_error},
    )
    app.router.redirect_slashes = False  # a trailing slash is another path: 404
    app.state.bridge = bridge
    return app


def from_environment() -> Starlette:
    """The app from `BRIDGE_*` alone: what each uvicorn worker process builds."""
    settings = Settings()
    logs.to_stdout(settings.log_level)
    return create_app(settings)
