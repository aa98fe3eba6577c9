"""The `/_bridge/` pages: compare, explain and usage, for the team running the migration.

Every page needs the admin token (`BRIDGE_ADMIN_TOKEN`, as `Authorization:
Bearer`); with none set they stay shut. A legacy token never opens them.
"""

from __future__ import annotations

import asyncio
import hmac
import html

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import Message

from legacy_bridge import report
from legacy_bridge.auth import Authenticator, bearer, digest
from legacy_bridge.courseprogress import CourseProgressRoute
from legacy_bridge.dataapi import DataApiService
from legacy_bridge.errors import InvalidParameter, NotFound, Unauthorized
from legacy_bridge.explain import explain, explain_sql
from legacy_bridge.modes import MODES
from legacy_bridge.pagination import Checkpoints, query_key
from legacy_bridge.responses import json_response
from legacy_bridge.routes import CompiledRoute, resolve
from legacy_bridge.runtime import ModeBoard
from legacy_bridge.sqlplan import plan
from legacy_bridge.store import UsageRow
from legacy_bridge.usage import Usage


def _guard(admin_token: str | None, request: Request) -> None:
    if not admin_token:
        raise Unauthorized("the /_bridge/ pages are shut: set BRIDGE_ADMIN_TOKEN")
    presented = bearer(request.headers.get("authorization"))
    if not hmac.compare_digest(digest(presented), digest(admin_token)):
        raise Unauthorized("the admin token is required")


def usage_table(rows: list[UsageRow]) -> str:
    """Plain text, one line per (client, route, kind, name): for the CLI."""
    header = f"{'client':<20} {'route':<22} {'kind':<8} {'name':<34} {'count':>8}  last seen"
    lines = [header, "-" * len(header)]
    lines += [f"{r.client:<20} {r.route:<22} {r.kind:<8} {r.name or '-':<34} {r.count:>8}  "
              f"{r.last_seen}" for r in rows]
    return "\n".join(lines)


def usage_page(rows: list[UsageRow]) -> str:
    """Per client: what it still uses of the legacy API, and when it was last seen. A
    self-contained HTML page (no external assets: it renders offline)."""
    clients: dict[str, list[UsageRow]] = {}
    for row in rows:
        clients.setdefault(row.client, []).append(row)
    sections = []
    for client, used in sorted(clients.items(),
                               key=lambda kv: max(r.last_seen for r in kv[1]), reverse=True):
        last = max(r.last_seen for r in used)
        requests = sum(r.count for r in used if r.kind == "request")
        routes = "".join(
            f"<tr><td>{html.escape(route)}</td><td class=n>"
            f"{sum(r.count for r in mine if r.kind == 'request')}</td>"
            f"<td>{_names(mine, 'param')}</td><td>{_names(mine, 'field')}</td>"
            f"<td>{max(r.last_seen for r in mine)}</td></tr>"
            for route, mine in _by_route(used))
        sections.append(f"""
<section class=client id="client-{html.escape(client)}">
<h2>{html.escape(client)}</h2>
<p>{requests} requests; last seen {last}</p>
<table><tr><th>route</th><th class=n>requests</th><th>parameters still used</th>
<th>fields still read</th><th>last seen (UTC)</th></tr>{routes}</table>
</section>""")
    body = "".join(sections) or "<p>No legacy calls counted yet.</p>"
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>legacy-bridge usage</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:80em}}
table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border-bottom:1px solid #ddd;padding:.3em .8em;text-align:left;vertical-align:top}}
.n{{text-align:right}}</style></head><body>
<h1>Who still calls the legacy API</h1>
<p>Per client, what stands between it and the GraphQL API. JSON:
<a href="usage.json">usage.json</a>.</p>{body}</body></html>"""


def _by_route(rows: list[UsageRow]) -> list[tuple[str, list[UsageRow]]]:
    routes: dict[str, list[UsageRow]] = {}
    for row in rows:
        routes.setdefault(row.route, []).append(row)
    return sorted(routes.items())


def _names(rows: list[UsageRow], kind: str) -> str:
    """The parameters or fields used, most used first, with their counts."""
    used = sorted((r for r in rows if r.kind == kind), key=lambda r: -r.count)
    return ", ".join(f"{html.escape(r.name)} <small>({r.count})</small>" for r in used) \
        or "&mdash;"


def admin_routes(admin_token: str | None, routes: list[CompiledRoute], auth: Authenticator,
                 checkpoints: Checkpoints, usage: Usage, data_api: DataApiService | None,
                 upstream_url: str, max_walk: int,
                 course_progress: list[CourseProgressRoute],
                 modes: dict[str, str] | None = None,
                 board: ModeBoard | None = None) -> list[Route]:
    """The admin pages; `modes`: each surface's table mode, shown beside its rates;
    `board`: the modes set while serving (`/_bridge/modes`)."""
    async def explain_course_progress(request: Request, url: str) -> Response | None:
        """A course-progress URL: the call rebuilt as a request (with the POSTed body)."""
        path, _, query = url.partition("?")
        body = await request.body()

        async def receive() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        for surface in course_progress:
            params = surface.matches(path)
            if params is None:
                continue
            method = "GET" if request.method == "GET" else "POST"
            if method not in surface.route.methods:
                raise InvalidParameter(f"{path} does not take {method}")

            legacy = Request({"type": "http", "method": method, "path": path,
                              "query_string": query.encode(), "path_params": params,
                              "headers": []}, receive)
            return json_response(await surface.explain(
                legacy, request.query_params.get("learner")))
        return None

    async def explain_page(request: Request) -> Response:
        _guard(admin_token, request)
        url = request.query_params.get("url")
        if not url:
            raise InvalidParameter("url must be a legacy path with its query, percent-encoded")
        explained = await explain_course_progress(request, url)
        if explained is not None:
            return explained
        compiled, legacy = resolve(routes, url)
        query = query_key(auth.key_scope, compiled.route.endpoint, legacy.variables)
        checkpoint = await checkpoints.nearest(query, legacy.offset)
        return json_response(explain(compiled.route, compiled.page, compiled.walk, legacy,
                                     checkpoint, upstream_url, max_walk))

    async def explain_post(request: Request) -> Response:
        _guard(admin_token, request)
        url = request.query_params.get("url")
        if url is not None:  # a course-progress write; else the body is SQL
            explained = await explain_course_progress(request, url)
            if explained is None:
                raise InvalidParameter("url is not a course-progress route that writes")
            return explained
        service = data_api
        if service is None:
            raise NotFound("no Data API table is loaded")
        query_plan = plan(await service.read_sql(request), service.api, service.limits)
        total = None
        if not query_plan.empty and not (query_plan.count and query_plan.count.from_totals):
            total = await service.total(query_plan.variables, auth.api_key)
        return json_response(explain_sql(query_plan, service.api, upstream_url, total))

    async def usage_html(request: Request) -> Response:
        _guard(admin_token, request)
        await usage.flush()
        return HTMLResponse(usage_page(usage.store.usage()))

    async def usage_json(request: Request) -> Response:
        _guard(admin_token, request)
        await usage.flush()
        return json_response([row.__dict__ for row in usage.store.usage()])

    async def compare_page(request: Request) -> Response:
        _guard(admin_token, request)
        summaries = await asyncio.to_thread(
            lambda: report.summarize(usage.store.iter_comparisons()))
        shown = dict(modes or {})
        for name, setting in (board.settings if board else {}).items():
            shown[name] = f"{setting.mode} ({setting.percent}%, set by {setting.changed_by})"
        changes = await asyncio.to_thread(usage.store.mode_changes)
        return HTMLResponse(report.page(summaries, shown, changes))

    async def modes_page(request: Request) -> Response:
        """GET: the modes set while serving and their audit trail. POST {route, mode,
        percent, who}: set one (mode null: back to the table's)."""
        _guard(admin_token, request)
        if board is None:
            raise NotFound("runtime modes are off")
        if request.method == "POST":
            try:
                change = orjson.loads(await request.body())
                route, mode = change["route"], change.get("mode")
                percent, who = int(change.get("percent", 100)), str(change.get("who", "api"))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                raise InvalidParameter("the body must be {route, mode, percent, who}") from None
            if route not in (modes or {}):
                raise InvalidParameter(f"unknown route; use one of {', '.join(modes or {})}")
            if (mode is not None and mode not in MODES) or not 0 <= percent <= 100:
                raise InvalidParameter(f"mode is one of {', '.join(MODES)} (or null), "
                                       "percent 0..100")
            await usage.store.later(usage.store.set_route_mode, route, mode, percent, who)
            await board.load()  # this replica at once; the others within their refresh
        return json_response({
            "routes": {n: {"mode": s.mode, "percent": s.percent, "changed_at": s.changed_at,
                           "changed_by": s.changed_by} for n, s in board.settings.items()},
            "changes": [c.__dict__ for c in
                        await asyncio.to_thread(usage.store.mode_changes)]})

    return [Route("/_bridge/compare", compare_page, methods=["GET"]),
            Route("/_bridge/modes", modes_page, methods=["GET", "POST"]),
            Route("/_bridge/explain", explain_page, methods=["GET"]),
            Route("/_bridge/explain", explain_post, methods=["POST"]),
            Route("/_bridge/usage", usage_html, methods=["GET"]),
            Route("/_bridge/usage.json", usage_json, methods=["GET"])]
