"""The proxy's ASGI app: `create_app(settings, transport=None)` wires the parts once.

Every legacy surface a mapping folder declares (a paged route per table,
the Data API table) is served through the one pipeline (pipeline.py), which
wraps the migration mode around the surface's own translation. `transport`
lets tests put the emulator (or respx) under the upstream client.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.routing import Route as StarletteRoute

from legacy_bridge import logs, openapi, params, tracing
from legacy_bridge.admin import admin_routes
from legacy_bridge.auth import Authenticator, authenticator_from, load_learners
from legacy_bridge.coursemap import COURSE_MAP_FILE, load_course_map
from legacy_bridge.courseprogress import CourseProgressRoute
from legacy_bridge.dataapi import DataApiService
from legacy_bridge.errors import (
    BridgeError,
    ConfigError,
    MappingError,
    MethodNotAllowed,
    NotFound,
)
from legacy_bridge.mapping import load_mappings
from legacy_bridge.metrics import Metrics
from legacy_bridge.middleware import Catchall, RequestLog, RouteHeaders, SizeGate
from legacy_bridge.pagination import Checkpoints, MemoryCheckpoints, open_checkpoints
from legacy_bridge.pipeline import Pipeline
from legacy_bridge.progress import Progress
from legacy_bridge.progresstable import ProgressTable, load_progress_table
from legacy_bridge.ratelimits import ClientLimits, rule
from legacy_bridge.relay import LegacyRelay
from legacy_bridge.responses import json_response
from legacy_bridge.rest import Limits, RestRoute
from legacy_bridge.routes import CompiledRoute, compile_route, resolve
from legacy_bridge.runtime import ModeBoard
from legacy_bridge.settings import Settings
from legacy_bridge.shadow import Shadow
from legacy_bridge.sqlmap import load_data_api
from legacy_bridge.store import Store
from legacy_bridge.tokenreload import TokenReloader
from legacy_bridge.transport import asyncio_declared
from legacy_bridge.upstream import Policy, Upstream
from legacy_bridge.usage import Usage


@dataclass
class Components:
    """What create_app built, kept on `app.state.bridge` for probes, tools and tests."""

    settings: Settings
    routes: list[CompiledRoute]
    auth: Authenticator
    checkpoints: Checkpoints
    metrics: Metrics
    upstream: Upstream
    usage: Usage
    shadow: Shadow
    relay: LegacyRelay | None
    data_api: DataApiService | None
    course_progress: list[CourseProgressRoute]
    limits: ClientLimits  # the token table's per-client limits
    board: ModeBoard  # modes set while serving, shared through the store
    endpoints: list[str]
    clock: Callable[[], float]  # every TTL, reset and cache age in the proxy
    _ready: tuple[float, bool, dict[str, str]] | None = field(default=None, init=False)

    def resolve(self, url: str) -> tuple[CompiledRoute, params.Request]:
        return resolve(self.routes, url)

    async def ready(self) -> tuple[bool, dict[str, str]]:
        """Is every upstream endpoint answering? Cached for BRIDGE_READY_CACHE_SECONDS."""
        now = self.clock()
        if self._ready is not None and \
                now - self._ready[0] < self.settings.ready_cache_seconds:
            return self._ready[1], self._ready[2]
        key = self.auth.api_key if self.auth.mode == "tokens" else None
        answers = await asyncio.gather(*(self.upstream.probe(e, key) for e in self.endpoints))
        found = dict(zip(self.endpoints, answers, strict=True))
        ok = all(a == "ok" for a in answers)
        self._ready = (now, ok, found)
        return ok, found

    async def aclose(self) -> None:
        await self.usage.flush()
        await self.usage.store.aclose()
        await self.upstream.aclose()
        if self.relay is not None:
            await self.relay.aclose()
        await self.checkpoints.aclose()
        await self.limits.aclose()


def _components(settings: Settings, transport: httpx.AsyncBaseTransport | None,
                legacy_transport: httpx.AsyncBaseTransport | None,
                clock: Callable[[], float]) -> Components:
    """Load and check the tables and settings, and build every part once."""
    routes = [compile_route(r) for r in load_mappings(settings.mappings_dir)]
    data_api = load_data_api(settings.mappings_dir)
    progress_table = load_progress_table(settings.mappings_dir)
    auth = authenticator_from(settings)
    checkpoints = open_checkpoints(settings.cursor_cache, settings.cursor_cache_size,
                                   settings.cursor_cache_ttl, clock)
    api_of = {c.route.endpoint: c.route.api for c in routes}
    api_of.update({j.endpoint: j.api for c in routes for j in c.route.joins.values()})
    if progress_table is not None:
        api_of[progress_table.endpoint] = "learning-path"
    if data_api is not None:
        api_of[data_api.endpoint] = data_api.api
        if data_api.catalog is not None:
            api_of[data_api.catalog.endpoint] = data_api.catalog.api

    def figures() -> dict[str, Any]:
        return {"hits": checkpoints.hits, "misses": checkpoints.misses,
                "failures": checkpoints.failures,
                "size": len(checkpoints) if isinstance(checkpoints, MemoryCheckpoints) else 0,
                "coalesced": upstream.coalesced, "shadow_queue": shadow.queue.qsize(),
                "breakers": {api_of.get(e, "other"): b.state
                             for e, b in upstream.breakers.items()}}

    metrics = Metrics(figures)

    def observe(endpoint: str, outcome: str, seconds: float) -> None:
        metrics.upstream_answer(api_of.get(endpoint, "other"), outcome, seconds)

    upstream = Upstream(settings.upstream_url, Policy(
        timeout=settings.upstream_timeout, connect_timeout=settings.upstream_connect_timeout,
        retries=settings.upstream_retries, backoff=settings.upstream_backoff,
        breaker_failures=settings.breaker_failures, breaker_reset=settings.breaker_reset,
        concurrency=settings.upstream_concurrency,
        queue_timeout=settings.upstream_queue_timeout,
        max_response_bytes=settings.upstream_max_response_bytes), transport, observe, clock,
        passthrough=auth.mode == "passthrough", ca_file=settings.upstream_ca_file)
    modes = {c.route.mode or settings.mode for c in routes}
    if data_api is not None:
        modes.add(data_api.mode or settings.mode)
    if progress_table is not None:
        modes.add(progress_table.mode or settings.mode)
    relay = None
    if settings.legacy_url:
        relay = LegacyRelay(settings.legacy_url, settings.total_deadline, legacy_transport)
    elif modes - {"graphql"}:
        raise ConfigError(f"BRIDGE_LEGACY_URL is required for mode "
                          f"{', '.join(sorted(modes - {'graphql'}))}")
    store = Store(settings.store_url, settings.compare_keep, settings.compare_keep_days)
    usage = Usage(store)
    shadow = Shadow(store, metrics, settings.shadow_queue_size, settings.shadow_sample_rate,
                    settings.upstream_max_response_bytes)
    service = (DataApiService(data_api, upstream, auth, settings, usage, clock)
               if data_api is not None else None)
    course_routes = _course_progress(settings, progress_table, upstream, auth, store, usage)
    limits = ClientLimits({e.label: r for e in auth.entries if (r := rule(e.rate, e.concurrent))},
                          settings.rate_limit_storage, metrics)
    return Components(settings, routes, auth, checkpoints, metrics, upstream, usage, shadow,
                      relay, service, course_routes, limits,
                      ModeBoard(store, settings.mode_refresh_seconds), sorted(api_of), clock)


def _course_progress(settings: Settings, table: ProgressTable | None, upstream: Upstream,
                     auth: Authenticator, store: Store, usage: Usage
                     ) -> list[CourseProgressRoute]:
    """The course-progress routes, when the mappings folder has their table."""
    if table is None:
        return []
    courses = load_course_map(settings.mappings_dir)
    if courses is None:
        raise MappingError(table.file, "course_progress", f"no {COURSE_MAP_FILE} beside it",
                           f"add {COURSE_MAP_FILE} to the mappings folder (README: "
                           "The course map)")
    progress = Progress(table, courses, store, upstream, auth.api_key,
                        settings.progress_ryw_seconds, settings.progress_max_courses)
    learners = load_learners(settings.learners_file)
    return [CourseProgressRoute(route, table, courses, progress, auth, learners, usage,
                                settings.total_deadline, settings.compare_pii == "keep")
            for route in table.routes]


async def _bridge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BridgeError)
    return json_response(exc.body(), exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing misses in the contract's body; 405 names what the path allows."""
    assert isinstance(exc, HTTPException)
    error: BridgeError = NotFound("no such route")
    if exc.status_code == 405:
        allowed = sorted({m for r in request.app.router.routes
                          if isinstance(r, StarletteRoute) and r.methods
                          and r.matches(request.scope)[0] == Match.PARTIAL
                          for m in r.methods if m != "HEAD"})
        error = MethodNotAllowed(f"only {', '.join(allowed)} is allowed",
                                 {"Allow": ", ".join(allowed)})
    return json_response(error.body(), error.status, error.headers)


def create_app(settings: Settings, transport: httpx.AsyncBaseTransport | None = None,
               legacy_transport: httpx.AsyncBaseTransport | None = None,
               clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The proxy, with its mappings loaded and checked; raises MappingError or ConfigError.

    `clock` is what every TTL, breaker reset and cache age reads: tests move it.
    """
    tracing.setup()  # spans recorded and exported only with OTEL_EXPORTER_OTLP_ENDPOINT
    bridge = _components(settings, transport, legacy_transport, clock)
    pipeline = Pipeline(settings.mode, settings.shadow_primary, bridge.relay, bridge.shadow,
                        bridge.usage, bridge.auth, bridge.metrics, bridge.limits,
                        bridge.board)
    limits = Limits(settings.total_deadline, settings.max_walk_requests,
                    settings.compare_pii == "keep")
    sql = bridge.data_api
    description = json_response(openapi.document(
        [c.route for c in bridge.routes], sql.api if sql else None,
        bridge.course_progress[0].table if bridge.course_progress else None))

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
        with asyncio_declared():  # httpcore asks, several times per request
            flusher = asyncio.create_task(bridge.usage.run(settings.usage_flush_seconds))
            workers = [asyncio.create_task(bridge.shadow.run())
                       for _ in range(settings.shadow_workers)]
            await bridge.board.load()  # modes set while an earlier process served
            workers.append(asyncio.create_task(bridge.board.run()))
            if bridge.metrics.shared is not None:  # other workers answer scrapes too
                workers.append(asyncio.create_task(bridge.metrics.run()))
            if settings.tokens_file is not None and bridge.auth.mode == "tokens":
                reloader = TokenReloader(settings.tokens_file, bridge.auth, bridge.limits)
                app.state.token_reloader = reloader
                workers.append(asyncio.create_task(reloader.watch(settings.tokens_reload_seconds)))
            yield
            await bridge.shadow.drain(settings.shutdown_timeout / 2)
            for worker in workers:
                worker.cancel()
            flusher.cancel()
            await bridge.aclose()

    routes = [StarletteRoute(c.route.path, pipeline.endpoint(RestRoute(
                  c, bridge.auth, bridge.upstream, bridge.checkpoints, bridge.usage, limits)),
                             methods=["GET"])
              for c in bridge.routes]
    if sql is not None:
        routes.append(StarletteRoute(sql.api.path, pipeline.endpoint(sql), methods=["POST"]))
    routes += [StarletteRoute(c.route.path, pipeline.endpoint(c), methods=list(c.route.methods))
               for c in bridge.course_progress]
    routes += [StarletteRoute("/healthz", healthz, methods=["GET"]),
               StarletteRoute("/readyz", readyz, methods=["GET"]),
               StarletteRoute("/metrics", metrics, methods=["GET"]),
               StarletteRoute("/openapi.json", openapi_json, methods=["GET"])]
    admin_token = settings.admin()
    routes += admin_routes(admin_token, bridge.routes, bridge.auth, bridge.checkpoints,
                           bridge.usage, sql, settings.upstream_url,
                           settings.max_walk_requests, bridge.course_progress,
                           {**{c.route.name: c.route.mode or settings.mode for c in bridge.routes},
                            **({sql.name: sql.mode or settings.mode} if sql else {}),
                            **{c.name: c.mode or settings.mode
                               for c in bridge.course_progress}}, bridge.board)
    logs.setup()
    route_headers = {c.route.path: [(k.lower().encode(), v.encode()) for k, v in c.route.headers]
                     for c in bridge.routes if c.route.headers}
    app = Starlette(
        routes=routes, lifespan=lifespan,
        middleware=[Middleware(RequestLog, metrics=bridge.metrics), Middleware(Catchall),
                    Middleware(SizeGate, max_url_bytes=settings.max_url_bytes,
                               max_header_bytes=settings.max_header_bytes),
                    Middleware(RouteHeaders, headers=route_headers)],
        exception_handlers={BridgeError: _bridge_error, 404: _http_error, 405: _http_error},
    )
    app.router.redirect_slashes = False  # a trailing slash is another path: 404
    app.state.bridge = bridge
    return app


def from_environment() -> Starlette:
    """The app from `BRIDGE_*` alone: what each uvicorn worker process builds."""
    settings = Settings()
    logs.to_stdout(settings.log_level)
    return out_of_the_collectors_way(create_app(settings))


def out_of_the_collectors_way(app: Starlette) -> Starlette:
    """What start-up built lives as long as the serving process: frozen, so the
    collector's full passes walk only what requests leave behind (they were the
    answers' tail latency under load). A parsed upstream page is thousands of young
    objects: the youngest generation is collected per 20,000 allocations, not 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    return app
