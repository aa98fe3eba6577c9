"""Structured logs: one JSON line per request, and what a request cost upstream.

`RequestStats` lives in a context variable for the duration of one legacy
request, so the upstream client and the checkpoint cache can count into it
without being handed it. Log lines name the client by its token-table label;
no token, key or upstream error text is ever a field.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Fresh request ids: a random prefix per process and a counter, 32 hex digits; unique
# without a system call per request.
_ID_PREFIX = os.urandom(8).hex()
_ids = itertools.count()


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
    return f"{_ID_PREFIX}{next(_ids):016x}"


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


def foreign_formatter() -> logging.Formatter:
    """JSON lines for records that other libraries log (uvicorn's start-up, tracebacks)."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name,
                           structlog.processors.add_log_level,
                           structlog.processors.TimeStamper(fmt="iso", utc=True)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(serializer=_orjson)])


def uvicorn_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's `log_config`: its lines, and any other library's warnings, as JSON on
    stdout beside the proxy's own. A dict naming a factory, so each worker applies it."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "legacy_bridge.logs.foreign_formatter"}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stdout"}},
        "loggers": {"uvicorn": {"handlers": ["stdout"], "level": level.upper(),
                                "propagate": False},
                    "uvicorn.access": {"handlers": ["stdout"], "level": level.upper(),
                                       "propagate": False}},
        "root": {"handlers": ["stdout"], "level": "WARNING"},
    }


def get(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
