"""The one upstream client. The only place httpx errors become domain errors.

GraphQL over HTTP: `POST` JSON, `Authorization: Token <key>`. Identical
requests in flight at the same moment (same endpoint, credential and body) are
sent once and their answer shared. Error texts from the upstream never reach
a client or a log line: they are replaced by the contract's messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from typing import Any

import httpx
import orjson
from graphql import GraphQLSchema, build_client_schema, get_introspection_query

from legacy_bridge.errors import (
    RateLimited,
    UpstreamError,
    UpstreamQueryError,
    UpstreamTimeout,
)
from legacy_bridge.mapping import SchemaUnavailable
from legacy_bridge.query import Document

log = logging.getLogger("legacy_bridge.upstream")

Flight = tuple[str, str, bytes]


def _retry_after(value: str | None) -> str:
    return value if value is not None and value.isdigit() else "1"


class Upstream:
    def __init__(self, base_url: str, timeout: float,
                 transport: httpx.AsyncBaseTransport | None = None,
                 max_connections: int = 100) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections))
        self._inflight: dict[Flight, asyncio.Future[dict[str, Any]]] = {}
        self.sent: Counter[str] = Counter()  # requests sent, by endpoint
        self.coalesced = 0

    async def aclose(self) -> None:
        await self._client.aclose()

    async def query(self, endpoint: str, document: Document, variables: dict[str, Any],
                    key: str) -> dict[str, Any]:
        """The `data` of one GraphQL request; raises a BridgeError on any failure."""
        body = orjson.dumps({"query": document.text, "variables": variables,
                             "operationName": document.operation_name})
        flight = (endpoint, hashlib.sha256(key.encode()).hexdigest(), body)
        pending = self._inflight.get(flight)
        if pending is not None:
            self.coalesced += 1
            return await asyncio.shield(pending)
        task = asyncio.ensure_future(self._send(endpoint, body, key))
        self._inflight[flight] = task
        task.add_done_callback(lambda _: self._inflight.pop(flight, None))
        return await asyncio.shield(task)

    async def _send(self, endpoint: str, body: bytes, key: str) -> dict[str, Any]:
        self.sent[endpoint] += 1
        try:
            response = await self._client.post(endpoint, content=body, headers={
                "Authorization": f"Token {key}", "Content-Type": "application/json",
                "Accept": "application/json"})
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the upstream did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError("the upstream connection failed") from exc
        status = response.status_code
        if status == 429:
            raise RateLimited("the upstream is rate limiting requests; retry later",
                              {"Retry-After": _retry_after(response.headers.get("retry-after"))})
        if status in (401, 403):
            log.error("upstream refused the proxy's API key (HTTP %s) at %s", status, endpoint)
            raise UpstreamError("the upstream refused the proxy's credentials")
        if status >= 500:
            raise UpstreamError(f"the upstream failed (HTTP {status})")
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("the upstream answered invalid JSON") from exc
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            if isinstance(payload, dict) and payload.get("errors"):
                raise UpstreamQueryError("the upstream rejected the query")
            raise UpstreamError(f"the upstream answered no data (HTTP {status})")
        return data


class LiveSchemas:
    """Schemas read from the upstream's introspection, for `check --upstream`.

    Catches schema drift before traffic does: the mappings are checked against
    what the upstream serves today, not against the project's copy. A schema
    source (see mapping.SchemaSource) and a context manager.
    """

    def __init__(self, base_url: str, key: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                    transport=transport)
        self._key = key
        self._found: dict[str, GraphQLSchema] = {}

    def __enter__(self) -> LiveSchemas:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def __call__(self, api: str, endpoint: str) -> GraphQLSchema:
        if endpoint not in self._found:
            try:
                response = self._client.post(
                    endpoint, json={"query": get_introspection_query()},
                    headers={"Authorization": f"Token {self._key}"})
                response.raise_for_status()
                self._found[endpoint] = build_client_schema(response.json()["data"])
            except httpx.HTTPStatusError as exc:
                raise SchemaUnavailable(f"introspection of {endpoint} answered HTTP "
                                        f"{exc.response.status_code}") from exc
            except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
                raise SchemaUnavailable(f"introspection of {endpoint} failed "
                                        f"({type(exc).__name__})") from exc
        return self._found[endpoint]
