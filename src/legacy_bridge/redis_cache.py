"""Cursor checkpoints shared by every replica, in Redis (`BRIDGE_CURSOR_CACHE=redis://...`).

Same interface as the in-memory cache (`pagination.Checkpoints`). One sorted
set per query (credential scope + endpoint + variables, hashed), scored by
offset, so "the nearest checkpoint at or before offset k" is one
ZREVRANGEBYSCORE. Each set expires `ttl` seconds after its last write.

Redis is an optimisation, never a dependency of correctness: when it is down
or slow (short socket timeouts), `nearest` answers "from the start" and
`store` drops the checkpoint, so the page is still right, only walked.
"""

from __future__ import annotations

import hashlib
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from legacy_bridge import logs

log = logs.get("legacy_bridge.redis_cache")


class RedisCheckpoints:
    def __init__(self, url: str, ttl: float, per_query: int,
                 prefix: str = "legacy-bridge:checkpoints:", timeout: float = 0.25) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout,
                                              socket_connect_timeout=timeout)
        self._ttl = max(1, int(ttl))
        self._per_query = per_query
        self._prefix = prefix
        self.hits = self.misses = self.failures = 0

    def _key(self, query: str) -> str:
        return self._prefix + hashlib.sha256(query.encode()).hexdigest()[:32]

    def _failed(self, operation: str, exc: RedisError) -> None:
        self.failures += 1
        log.warning("checkpoint cache unavailable; walking instead", operation=operation,
                    error=type(exc).__name__)

    async def nearest(self, query: str, offset: int) -> tuple[int, str | None]:
        try:
            found = await self._redis.zrevrangebyscore(self._key(query), offset, "-inf",
                                                       start=0, num=1, withscores=True)
        except RedisError as exc:
            self._failed("nearest", exc)
            return 0, None
        if not found:
            if offset:
                self.misses += 1
            return 0, None
        member, score = cast(tuple[bytes, float], found[0])
        self.hits += 1
        stats = logs.current.get()
        if stats is not None:
            stats.checkpoint_hits += 1
        return int(score), member.decode().split(":", 1)[1]

    async def store(self, query: str, offset: int, cursor: str) -> None:
        key = self._key(query)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, offset, offset)  # one cursor per offset
                pipe.zadd(key, {f"{offset}:{cursor}": offset})
                # a full query forgets its lowest offsets: crawls move forward
                pipe.zremrangebyrank(key, 0, -(self._per_query + 1))
                pipe.expire(key, self._ttl)
                await pipe.execute()
        except RedisError as exc:
            self._failed("store", exc)

    async def drop(self, query: str) -> None:
        try:
            await self._redis.delete(self._key(query))
        except RedisError as exc:
            self._failed("drop", exc)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> bool:
        """Does Redis answer? (`legacy-bridge check`; the request path never asks.)"""
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False
