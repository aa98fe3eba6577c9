"""JSON responses, encoded once with orjson (also the exact bytes of legacy floats: 65.0)."""

from __future__ import annotations

import orjson
from starlette.responses import Response


def json_response(body: object, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers,
                    media_type="application/json")
