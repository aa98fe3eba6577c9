"""Structured logs: one JSON line per request, and what a request cost upstream.

`RequestStats` lives in a context variable for the duration of one legacy
request, so the upstream client and the checkpoint cache can count into it
without being handed it. Log lines name the client by its token-table label;
no token, key or upstream error text is ever a field.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

import orjson
import structlog

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass
class RequestStats:
    request_id: str
    upstream_requests: int = 0
    checkpoint_hits: int = 0


current: ContextVar[RequestStats | None] = ContextVar("legacy_bridge_request", default=None)


def request_id(offered: str | None) -> str:
    """The client's X-Request-ID when it is a sane token, else a fresh one."""
    if offered and _REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def _orjson(value: object, **_: object) -> str:
    return orjson.dumps(value).decode()


def setup() -> None:
    """Render every event as one JSON line, handed to the standard library's logging."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # below the level: drop before rendering
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=_orjson),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def to_stdout(level: str = "INFO") -> None:
    """Where `serve` and `demo` send the lines: stdout, at `level`."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("legacy_bridge")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def get(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
