"""The emulator as one ASGI app: three GraphQL APIs, the catalog, legacy v2, Data API.

`create_emulator_app` is what `legacy-bridge emulate`, the demo and the tests
all serve; tests mount it on `httpx.ASGITransport` or a real uvicorn.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

from legacy_bridge.emulator.controls import Controls
from legacy_bridge.emulator.cursors import CursorCodec
from legacy_bridge.emulator.data_api import LegacyDataApi
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from legacy_bridge.emulator.graphql_api import API_NAMES, PATH_TEMPLATE, build_apis
from legacy_bridge.emulator.learning_path import ANA, BEN, Caller, LearningPath
from legacy_bridge.emulator.legacy import LEGACY_ROUTES, LegacyApi, LegacyError, error_response
from legacy_bridge.emulator.legacy_progress import LegacyCourseProgress
from legacy_bridge.emulator.store import Store

DEMO_API_KEY = "demo-company-key"
DEMO_PLAN_TOKEN = "demo-plan-token"
DEMO_COMPANY_TOKEN = "demo-company-token"
# course progress: legacy tokens of the learners Ana and Ben, and of an admin
DEMO_LEARNER_TOKEN = "demo-learner-token"
DEMO_LEARNER2_TOKEN = "demo-learner2-token"
DEMO_ADMIN_TOKEN = "demo-admin-token"
DEMO_ADMIN_USER = "0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e0a"
LEGACY_PATH = "/api/v2/plans/{plan_id}/"
DATA_API_PATH = "/api/emc/reports/query"


@dataclass
class EmulatorConfig:
    dataset: Path
    api_keys: tuple[str, ...] = (DEMO_API_KEY,)
    legacy_tokens: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {
        DEMO_PLAN_TOKEN: (DEMO_PLAN_ID,), DEMO_COMPANY_TOKEN: ("*",)})
    controls: bool = False
    drift: frozenset[str] = frozenset()  # see legacy.DRIFTS
    cursor_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    bound_cursors: bool = True  # False: cursors are accepted under any filter and order
    # the legacy course-progress API's tokens: token -> (user_id, role)
    course_users: Mapping[str, tuple[str, str]] = field(default_factory=lambda: {
        DEMO_LEARNER_TOKEN: (ANA, "learner"), DEMO_LEARNER2_TOKEN: (BEN, "learner"),
        DEMO_ADMIN_TOKEN: (DEMO_ADMIN_USER, "admin")})


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


def create_emulator_app(config: EmulatorConfig) -> Starlette:
    store = Store(config.dataset)
    learning_path = LearningPath()
    apis = build_apis(store, CursorCodec(config.cursor_secret, config.bound_cursors),
                      learning_path)
    controls = Controls(enabled=config.controls)
    legacy = LegacyApi(store, config.legacy_tokens, config.drift)
    data_api = LegacyDataApi(config.dataset, config.legacy_tokens)
    legacy_progress = LegacyCourseProgress(dict(config.course_users))
    keys = frozenset(config.api_keys)

    async def graphql(request: Request) -> Response:
        api = apis[request.url.path.split("/")[-2]]
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Token" or key not in keys:
            return _json({"errors": [{"message": "invalid API key"}]}, 401)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json({"errors": [{"message": "body is not JSON"}]}, 400)
        body = body if isinstance(body, dict) else {}
        caller: Caller | None = None
        if api.name == "learning-path":  # the user context comes from the authToken header
            try:
                caller = learning_path.caller(request.headers.get("authtoken"))
            except GraphQLError as exc:
                controls.record(api.name, body, request.headers.get("x-request-id"), None)
                return _json({"errors": [exc.formatted], "data": None})
        controls.record(api.name, body, request.headers.get("x-request-id"),
                        caller.user_id if caller else None, request.headers.get("traceparent"))
        await controls.delay()
        fault = controls.take_fault(api.name, body.get("operationName"))
        if fault is not None:
            return await controls.fault_response(fault)
        status, out = api.run(body, caller)
        return _json(out, status)

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            allowed = sorted({m for r in request.app.router.routes
                              if isinstance(r, Route) and r.methods
                              and r.matches(request.scope)[0] == Match.PARTIAL
                              for m in r.methods if m != "HEAD"})
            error = LegacyError(405, "method_not_allowed",
                                f"only {', '.join(allowed)} is allowed")
            return error_response(error, {"Allow": ", ".join(allowed)})
        return error_response(LegacyError(404, "not_found", "no such route"))

    routes = [Route(PATH_TEMPLATE.format(api=name), graphql, methods=["POST"])
              for name in API_NAMES]
    routes += [Route(LEGACY_PATH + name, legacy.handle, methods=["GET"])
               for name in LEGACY_ROUTES]
    routes.append(Route(DATA_API_PATH, data_api.handle, methods=["POST"]))
    routes += [Route("/api/progress", legacy_progress.own, methods=["GET", "POST", "PUT"]),
               Route("/api/admin/progress/{learnerId}", legacy_progress.admin,
                     methods=["GET"])]
    routes.append(Route("/healthz", healthz))
    if config.controls:
        routes += controls.routes()
    app = Starlette(routes=routes, exception_handlers={404: http_error, 405: http_error})
    app.router.redirect_slashes = False  # a trailing slash is another path: 404
    app.state.controls = controls
    app.state.store = store
    app.state.learning_path = learning_path
    app.state.legacy_progress = legacy_progress
    return app
