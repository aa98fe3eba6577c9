"""The proxy's ASGI app.

`create_app(settings, transport=None)` builds everything once at start-up;
`transport` lets tests put the emulator (or respx) under the upstream client.
"""

from __future__ import annotations

import httpx
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from legacy_bridge.errors import BridgeError, MethodNotAllowed, NotFound
from legacy_bridge.settings import Settings


def json_response(body: object, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")


async def _bridge_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BridgeError)
    return json_response(exc.body(), exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        error: BridgeError = MethodNotAllowed("only GET is allowed", {"Allow": "GET"})
    else:
        error = NotFound("no such route")
    return json_response(error.body(), error.status, error.headers)


def create_app(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    async def healthz(request: Request) -> Response:
        return json_response({"status": "ok"})

    app = Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"])],
        exception_handlers={BridgeError: _bridge_error, 404: _http_error, 405: _http_error},
    )
    app.router.redirect_slashes = False  # a trailing slash is another path: 404
    app.state.settings = settings
    return app
