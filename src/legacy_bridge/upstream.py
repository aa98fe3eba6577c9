"""The one upstream client. The only place httpx errors become domain errors.

GraphQL over HTTP: `POST` JSON, `Authorization: Token <key>`. Identical
requests in flight at the same moment (same endpoint, credential and body) are
sent once and their answer shared. Every query is an idempotent read, so
connection errors, 502, 503 and 504 are retried with jittered exponential
backoff (never 429: its Retry-After is passed on). A circuit breaker per
endpoint answers 503 at once while an upstream is down; a bound on concurrent
requests answers 503 when its queue wait runs out; answers are size-capped.
Error texts from the upstream never reach a client or a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from graphql import GraphQLSchema, build_client_schema, get_introspection_query

from legacy_bridge import logs, tracing
from legacy_bridge.breaker import Breaker
from legacy_bridge.errors import (
    BridgeError,
    LeaderCancelled,
    RateLimited,
    SchemaUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamOutage,
    UpstreamQueryError,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from legacy_bridge.query import Document
from legacy_bridge.transport import outbound_transport

log = logs.get("legacy_bridge.upstream")

Flight = tuple[str, str, bytes]
# observe(endpoint, outcome, seconds): one call per request actually sent
Observer = Callable[[str, str, float], None]
PROBE = orjson.dumps({"query": "{ __typename }"})


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a shared failure as seen when no other caller was waiting for it."""
    if not future.cancelled():
        future.exception()


def _retry_after(value: str | None) -> str:
    return value if value is not None and value.isdigit() else "1"


@dataclass(frozen=True)
class Policy:
    """How hard the client tries; every number is a setting."""

    timeout: float = 10.0  # read, write and pool
    connect_timeout: float = 3.0
    retries: int = 2  # extra attempts on connection errors, 502, 503, 504
    backoff: float = 0.1  # first backoff ceiling in seconds; doubles, full jitter
    breaker_failures: int = 20
    breaker_reset: float = 5.0
    concurrency: int = 100
    queue_timeout: float = 5.0
    max_response_bytes: int = 16 * 1024 * 1024


class Upstream:
    def __init__(self, base_url: str, policy: Policy,
                 transport: httpx.AsyncBaseTransport | None = None,
                 observe: Observer | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 passthrough: bool = False, ca_file: Path | None = None) -> None:
        self.policy = policy
        # A refused key is the proxy's own (the operator's problem: 502, logged as an
        # error), or in passthrough mode the client's own: 401, as the old API said.
        self._passthrough = passthrough
        self._clock = clock  # the breakers' time
        self._observe = observe
        self._base = base_url.rstrip("/")
        self._urls: dict[str, httpx.URL] = {}
        # The transport, not an AsyncClient: the client's per-request work (URL and
        # header merging, cookie extraction through http.cookiejar, auth and
        # redirect hooks) was a third of the proxy's upstream CPU, and the proxy
        # needs none of it.
        self._transport = transport or outbound_transport(base_url, policy.concurrency,
                                                          ca_file)
        self._timeouts = httpx.Timeout(policy.timeout,
                                       connect=policy.connect_timeout).as_dict()
        self._inflight: dict[Flight, asyncio.Future[dict[str, Any]]] = {}
        self._slots = asyncio.Semaphore(policy.concurrency)
        self.breakers: dict[str, Breaker] = {}
        self.received_bytes = 0
        self.coalesced = 0

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def _post(self, endpoint: str, body: bytes,
                    headers: dict[str, str]) -> httpx.Response:
        """Send one POST; the caller reads and closes the (streamed) response."""
        request = httpx.Request("POST", self._url(endpoint), content=body, headers=headers,
                                extensions={"timeout": self._timeouts})
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def query(self, endpoint: str, document: Document, variables: dict[str, Any],
                    key: str, user_token: str | None = None) -> dict[str, Any]:
        """The `data` of one GraphQL request; raises a BridgeError on any failure.

        `user_token` goes in the `authToken` header: the upstream's user context.
        """
        body = orjson.dumps({"query": document.text, "variables": variables,
                             "operationName": document.operation_name})
        flight = (endpoint, hashlib.sha256(f"{key}\n{user_token}".encode()).hexdigest(), body)
        pending = self._inflight.get(flight)
        if pending is not None:
            self.coalesced += 1
            try:
                data = await asyncio.shield(pending)
            except LeaderCancelled:
                # the caller that was sending it went away (client gone, its own
                # deadline): this caller, still wanted, sends it itself
                return await self.query(endpoint, document, variables, key, user_token)
        else:
            # The first caller sends it itself (no extra task, no extra loop hop);
            # callers arriving meanwhile wait on its future.
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieve)
            self._inflight[flight] = future
            try:
                data = await self._send(endpoint, body, key, user_token)
            except BaseException as exc:
                future.set_exception(exc if isinstance(exc, Exception) else LeaderCancelled())
                raise
            else:
                future.set_result(data)
            finally:
                del self._inflight[flight]
        return data

    async def mutate(self, endpoint: str, document: Document, variables: dict[str, Any],
                     key: str, user_token: str) -> dict[str, Any]:
        """One mutation: never coalesced, and never sent twice. It is retried only when
        the connection failed before the request went out."""
        body = orjson.dumps({"query": document.text, "variables": variables,
                             "operationName": document.operation_name})
        return await self._send(endpoint, body, key, user_token, resend=False)

    def _url(self, endpoint: str) -> httpx.URL:
        url = self._urls.get(endpoint)
        if url is None:
            url = self._urls[endpoint] = httpx.URL(self._base + endpoint)
        return url

    def breaker(self, endpoint: str) -> Breaker:
        if endpoint not in self.breakers:
            self.breakers[endpoint] = Breaker(self.policy.breaker_failures,
                                              self.policy.breaker_reset, self._clock)
        return self.breakers[endpoint]

    async def _send(self, endpoint: str, body: bytes, key: str, user_token: str | None = None,
                    resend: bool = True) -> dict[str, Any]:
        """`resend=False` (a write): retry only what never reached the upstream."""
        breaker = self.breaker(endpoint)
        for attempt in range(self.policy.retries + 1):
            if not breaker.allow():
                raise UpstreamUnavailable("the upstream is unavailable; retry later",
                                          {"Retry-After": str(breaker.retry_after())})
            try:
                data = await self._attempt(endpoint, body, key, user_token)
            except UpstreamOutage as exc:
                breaker.failure()
                retryable = exc.retryable and (resend or exc.unsent)
                if not retryable or attempt == self.policy.retries:
                    raise
                await asyncio.sleep(random.uniform(0, self.policy.backoff * 2 ** attempt))
                continue
            except UpstreamTimeout:
                breaker.failure()
                raise
            except UpstreamUnavailable:
                breaker.abandon()  # our own queue was full: says nothing of the upstream
                raise
            except BridgeError:
                breaker.success()  # it answered: rate limits and query errors are not outages
                raise
            except BaseException:
                breaker.abandon()
                raise
            breaker.success()
            return data
        raise AssertionError("unreachable")

    async def _attempt(self, endpoint: str, body: bytes, key: str,
                       user_token: str | None) -> dict[str, Any]:
        if self._slots.locked():  # else a slot is taken at once: no deadline to arm
            try:
                async with asyncio.timeout(self.policy.queue_timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise UpstreamUnavailable("the proxy's upstream queue is full; retry later",
                                          {"Retry-After": "1"}) from None
        else:
            await self._slots.acquire()
        started = time.perf_counter()
        outcome = "error"
        try:
            data = await self._exchange(endpoint, body, key, user_token)
            outcome = "ok"
            return data
        except RateLimited:
            outcome = "rate_limited"
            raise
        except UpstreamTimeout:
            outcome = "timeout"
            raise
        except UpstreamQueryError:
            outcome = "query_error"
            raise
        finally:
            self._slots.release()
            if self._observe is not None:
                self._observe(endpoint, outcome, time.perf_counter() - started)

    async def _exchange(self, endpoint: str, body: bytes, key: str,
                        user_token: str | None) -> dict[str, Any]:
        headers = {"Authorization": f"Token {key}", "Content-Type": "application/json",
                   "Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        if user_token is not None:
            headers["authToken"] = user_token
        stats = logs.current.get()
        if stats is not None:
            stats.upstream_requests += 1
            headers["X-Request-ID"] = stats.request_id
        try:
            with tracing.upstream_span(endpoint, headers) as span:
                response = await self._post(endpoint, body, headers)
                span.set_attribute("http.response.status_code", response.status_code)
                try:
                    content = await self._read_capped(response)
                finally:
                    await response.aclose()
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("the upstream did not answer in time") from exc
        except httpx.ConnectError as exc:  # nothing was sent: a write may try again
            raise UpstreamOutage("the upstream connection failed", retryable=True,
                                 unsent=True) from exc
        except httpx.HTTPError as exc:
            raise UpstreamOutage("the upstream connection failed", retryable=True) from exc
        status = response.status_code
        if status == 429:
            raise RateLimited("the upstream is rate limiting requests; retry later",
                              {"Retry-After": _retry_after(response.headers.get("retry-after"))})
        if status in (401, 403):
            if self._passthrough:
                log.info("upstream refused a client's own credential", status=status,
                         endpoint=endpoint)
                raise Unauthorized("the upstream refused this credential")
            log.error("upstream refused the proxy's API key", status=status, endpoint=endpoint)
            raise UpstreamError("the upstream refused the proxy's credentials")
        if status >= 500:
            raise UpstreamOutage(f"the upstream failed (HTTP {status})",
                          retryable=status in (502, 503, 504))
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamOutage("the upstream answered invalid JSON", retryable=False) from exc
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            if isinstance(payload, dict) and payload.get("errors"):
                raise UpstreamQueryError("the upstream rejected the query")
            raise UpstreamError(f"the upstream answered no data (HTTP {status})")
        return data

    async def probe(self, endpoint: str, key: str | None) -> str:
        """"ok" when the endpoint answers a trivial query in time, else why not.

        For readiness: never retried, never counted by the breaker. Without a
        key (passthrough) any answer below 500 means the upstream is there.
        """
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Token {key}"
        try:
            response = await self._post(endpoint, PROBE, headers)
            await response.aclose()
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError:
            return "unreachable"
        if response.status_code == 200 or (not key and response.status_code < 500):
            return "ok"
        return f"HTTP {response.status_code}"

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The answer, inflated step by step and refused as soon as it passes the cap:
        a small compressed answer can inflate a thousandfold (a "zip bomb")."""
        cap = self.policy.max_response_bytes
        inflate = _Inflater(response.headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            data = raw
            while data:
                piece, data = inflate(data, cap - size + 1)
                size += len(piece)
                if size > cap:
                    raise UpstreamOutage(f"the upstream answer exceeded {cap} bytes",
                                         retryable=False)
                chunks.append(piece)
        self.received_bytes += size
        return b"".join(chunks)


class _Inflater:
    """Incremental decoding of the encodings the proxy accepts (gzip, deflate)."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding.strip().lower()
        if self.encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise UpstreamOutage("the upstream answered in an unrequested encoding",
                                 retryable=False)
        gzip = self.encoding in ("gzip", "x-gzip")
        self._zlib = (zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
                      if self.encoding not in ("", "identity") else None)
        self._started = False

    def __call__(self, data: bytes, most: int) -> tuple[bytes, bytes]:
        """(at most `most` inflated bytes, the input still to inflate)."""
        if self._zlib is None:
            return data, b""
        try:
            piece = self._zlib.decompress(data, most)
        except zlib.error as exc:
            if self.encoding == "deflate" and not self._started:
                # some servers send raw deflate, without the zlib header
                self._zlib, self._started = zlib.decompressobj(-zlib.MAX_WBITS), True
                return self(data, most)
            raise UpstreamOutage("the upstream answered a corrupt compressed body",
                                 retryable=False) from exc
        self._started = True
        return piece, self._zlib.unconsumed_tail


class LiveSchemas:
    """Schemas read from the upstream's introspection, for `check --upstream`.

    Catches schema drift before traffic does: the mappings are checked against
    what the upstream serves today, not against the project's copy. A schema
    source (see mapping.SchemaSource) and a context manager.
    """

    def __init__(self, base_url: str, key: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                   transport=transport)
        self._key = key
        self._found: dict[str, GraphQLSchema] = {}

    def __enter__(self) -> LiveSchemas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def __call__(self, api: str, endpoint: str) -> GraphQLSchema:
        if endpoint not in self._found:
            try:
                response = self.client.post(
                    endpoint, json={"query": get_introspection_query()},
                    headers={"Authorization": f"Token {self._key}"})
                response.raise_for_status()
                self._found[endpoint] = build_client_schema(response.json()["data"])
            except httpx.HTTPStatusError as exc:
                raise SchemaUnavailable(f"introspection of {endpoint} answered HTTP "
                                        f"{exc.response.status_code}") from exc
            except httpx.TransportError as exc:
                raise UpstreamUnreachable(f"the upstream did not answer introspection of "
                                          f"{endpoint} ({type(exc).__name__})") from exc
            except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
                raise SchemaUnavailable(f"introspection of {endpoint} failed "
                                        f"({type(exc).__name__})") from exc
        return self._found[endpoint]
