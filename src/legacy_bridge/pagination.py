"""Offset pages over cursor connections, and the cursor checkpoint cache.

Legacy page p of size n covers offsets [(p-1)n, pn). The upstream only moves
forward from a cursor, so the proxy remembers the cursor at every offset it
has reached (a checkpoint), per credential scope + endpoint + variables. A
client reading pages 1, 2, 3, ... then costs exactly one upstream request per
page; a cold page walks from the nearest checkpoint with cursor-only requests
(`first: max`), at most ceil(skip / max) + 1 requests for a page of at most
`max` records. Pure but for the cache; the fetching is a callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from cachetools import TTLCache

from legacy_bridge import logs
from legacy_bridge.cursorpack import PackedCheckpoints
from legacy_bridge.errors import ConfigError, PageTooDeep, UpstreamError, UpstreamQueryError
from legacy_bridge.operations import Connection


@dataclass(frozen=True)
class Answer:
    """One upstream connection page."""

    cursors: list[str]
    nodes: list[dict[str, Any]] | None  # None for a cursor-only request
    total: int
    has_next: bool


def answer_of(data: dict[str, Any], conn: Connection, with_nodes: bool) -> Answer:
    """The records and paging facts of one upstream connection answer."""
    names = conn.names
    try:
        connection = data[conn.operation]
        edges = connection[names.edges]
        return Answer(
            cursors=[edge[names.cursor] for edge in edges],
            nodes=[edge[names.node] for edge in edges] if with_nodes else None,
            total=int(connection[names.total]),
            has_next=bool(connection[names.page_info][names.has_next]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UpstreamError("the upstream answered an unexpected shape") from exc


# fetch(first, after, with_nodes) -> Answer
Fetch = Callable[[int, str | None, bool], Awaitable[Answer]]


async def read_all(
        fetch: Callable[[str | None], Awaitable[Answer]]) -> AsyncGenerator[Answer, None]:
    """Every page of a connection, in order: `fetch(after)` until hasNextPage is false.

    The one cursor reader for whole connections (joins, the Data API, COUNT);
    offset pages go through `read_page`.
    """
    after: str | None = None
    while True:
        answer = await fetch(after)
        yield answer
        if not answer.has_next or not answer.cursors:
            return
        after = answer.cursors[-1]


@dataclass(frozen=True)
class Page:
    nodes: list[dict[str, Any]]
    total: int
    start: tuple[int, str | None] = (0, None)  # the checkpoint the read began from


class Checkpoints(Protocol):
    """Where cursors at offsets are kept: in memory here, or in Redis (`redis_cache`)."""

    hits: int
    misses: int
    failures: int

    async def nearest(self, query: str, offset: int) -> tuple[int, str | None]: ...
    async def store(self, query: str, offset: int, cursor: str) -> None: ...
    async def drop(self, query: str) -> None: ...
    async def aclose(self) -> None: ...
    async def ping(self) -> bool: ...


class MemoryCheckpoints:
    """Checkpoints in process memory, `size` at most, LRU by query.

    A query's checkpoints live `ttl` seconds past the query's last use, and
    the least recently used query goes first when the cache is full. Size 0
    keeps nothing: every page walks from the start (the naive baseline).
    """

    def __init__(self, size: int, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = size > 0
        self.failures = 0  # never fails; the shared cache's figure
        # a query weighs one per checkpoint (at least one)
        self._queries: TTLCache[str, PackedCheckpoints] = TTLCache(
            max(size, 1), ttl, timer=clock, getsizeof=lambda q: max(1, len(q)))
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return sum(len(q) for q in self._queries.values())

    async def nearest(self, query: str, offset: int) -> tuple[int, str | None]:
        found = self._queries.get(query)
        nearest = found.at_or_before(offset) if found is not None else None
        if nearest is not None:
            self.hits += 1
            stats = logs.current.get()
            if stats is not None:
                stats.checkpoint_hits += 1
            return nearest
        if offset:
            self.misses += 1
        return 0, None

    async def store(self, query: str, offset: int, cursor: str) -> None:
        if not self.enabled:
            return
        found = self._queries.get(query)
        if found is None:
            found = PackedCheckpoints()
        found.put(offset, cursor, most=int(self._queries.maxsize))  # no query outgrows it
        self._queries[query] = found  # re-weighs it, refreshes its TTL and LRU place

    async def drop(self, query: str) -> None:
        self._queries.pop(query, None)

    async def aclose(self) -> None:
        """Nothing to release: the shared form holds a connection pool."""

    async def ping(self) -> bool:
        return True  # in this process: always there


def query_key(scope: str, endpoint: str, variables: Mapping[tuple[str, ...], Any]) -> str:
    """Checkpoints are per credential scope, endpoint and canonical variables."""
    canonical = sorted((".".join(path), value) for path, value in variables.items())
    return f"{scope}|{endpoint}|{orjson.dumps(canonical).decode()}"


def walk_requests(skip: int, size: int, max_first: int) -> int:
    """Cursor-only requests needed to come within one request of a page."""
    return math.ceil(max(0, skip + min(size, max_first) - max_first) / max_first)


def next_request(skip: int, wanted: int, max_first: int) -> tuple[int, bool]:
    """(first, with_nodes) of the next request, `skip` records before the `wanted` ones.

    The one rule of a walk: while the records wanted do not fit in one request
    after the ones to skip, skip with a cursor-only request of up to `max_first`.
    """
    remaining = min(wanted, max_first)
    if skip + remaining <= max_first:
        return skip + remaining, True
    return min(skip, max_first), False


def walk_steps(skip: int, size: int, max_first: int) -> tuple[list[int], int]:
    """The `first` of each cursor-only request, and the records left to drop after:
    the requests `read_page` sends when every answer is full."""
    steps: list[int] = []
    while True:
        first, with_nodes = next_request(skip, size, max_first)
        if with_nodes:
            return steps, skip
        steps.append(first)
        skip -= first


async def read_page(offset: int, size: int, *, max_first: int, max_walk: int,
                    checkpoints: Checkpoints, query: str, fetch: Fetch,
                    api: str = "upstream") -> Page:
    """Records [offset, offset + size) of the connection `query`, via `fetch`."""
    start, cursor = await checkpoints.nearest(query, offset)
    try:
        page = await _read(offset, size, start, cursor, max_first, max_walk, checkpoints,
                           query, fetch, api)
        return Page(page.nodes, page.total, (start, cursor))
    except UpstreamQueryError:
        if cursor is None:
            raise
    # The upstream refused a remembered cursor (expired, data changed): forget
    # this query's checkpoints and walk again from the start, once.
    await checkpoints.drop(query)
    return await _read(offset, size, 0, None, max_first, max_walk, checkpoints, query, fetch,
                       api)


async def _read(offset: int, size: int, position: int, after: str | None, max_first: int,
                max_walk: int, checkpoints: Checkpoints, query: str, fetch: Fetch,
                api: str) -> Page:
    skip = offset - position
    needed = walk_requests(skip, size, max_first)
    if needed > max_walk:
        probe = await fetch(1, None, False)
        if offset >= probe.total:
            return Page([], probe.total)
        raise PageTooDeep(f"reaching offset {offset} takes {needed} upstream requests, more "
                          f"than the {max_walk} allowed; read this far with the {api} GraphQL "
                          "API and its cursors")
    nodes: list[dict[str, Any]] = []
    while True:
        first, with_nodes = next_request(skip, size - len(nodes), max_first)
        answer = await fetch(first, after, with_nodes)
        if answer.cursors:
            position += len(answer.cursors)
            after = answer.cursors[-1]
            await checkpoints.store(query, position, after)
        if offset >= answer.total:
            return Page([], answer.total)
        if answer.nodes is not None:
            nodes += answer.nodes[skip:]
            skip = 0
        else:
            skip -= len(answer.cursors)
        if len(nodes) >= size or not answer.has_next or len(answer.cursors) < first:
            return Page(nodes[:size], answer.total)


def open_checkpoints(cache: str, size: int, ttl: float,
                     clock: Callable[[], float]) -> Checkpoints:
    """The checkpoint cache BRIDGE_CURSOR_CACHE names: `memory`, or a Redis URL."""
    if cache == "memory":
        return MemoryCheckpoints(size, ttl, clock)
    if not cache.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("BRIDGE_CURSOR_CACHE must be `memory` or a redis:// URL")
    try:  # the driver is the [redis] extra: only deployments sharing a cache need it
        from legacy_bridge.redis_cache import RedisCheckpoints
    except ModuleNotFoundError:
        raise ConfigError("BRIDGE_CURSOR_CACHE is a Redis URL but the Redis driver is not "
                          "installed: pip install 'legacy-bridge[redis]'") from None
    return RedisCheckpoints(cache, ttl, size)
