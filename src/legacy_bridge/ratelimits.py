"""Per-client limits, from the token table, so one bulk exporter cannot starve the rest.

An entry may say `rate = "20/second"` (the `limits` library's notation: a
moving window) and `concurrent = 10` (requests in flight). The rate is shared
by every replica through Redis when BRIDGE_RATE_LIMIT_STORAGE is a redis://
URL, and kept in this process otherwise; the in-flight cap is per replica.
Over either, the client gets the contract's 429 `rate_limited` with
`Retry-After`. A limiter that cannot reach Redis lets requests through (logged):
it protects the upstream, it must not take the proxy down.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from legacy_bridge import logs
from legacy_bridge.errors import ConfigError, RateLimited
from legacy_bridge.metrics import Metrics

log = logs.get("legacy_bridge.ratelimits")


@dataclass(frozen=True)
class Rule:
    rate: RateLimitItem | None
    concurrent: int | None


def rule(rate: str | None, concurrent: int | None) -> Rule | None:
    """A token entry's limits; raises ValueError for a rate `limits` cannot read."""
    if rate is None and concurrent is None:
        return None
    return Rule(parse(rate) if rate is not None else None, concurrent)


class ClientLimits:
    def __init__(self, rules: dict[str, Rule], storage_url: str, metrics: Metrics) -> None:
        """`storage_url`: `memory`, or a redis:// URL (connections opened when first used,
        with short timeouts, and closed by `aclose`)."""
        self.rules = rules  # by the token table's label: never a token
        self.metrics = metrics
        self._pool: Any = None  # redis.asyncio.ConnectionPool, when Redis counts
        storage: Storage
        if storage_url == "memory" or not rules:
            storage = MemoryStorage()
        elif storage_url.startswith(("redis://", "rediss://")):
            try:  # the driver is the [redis] extra
                from redis.asyncio import ConnectionPool
            except ModuleNotFoundError:
                raise ConfigError("BRIDGE_RATE_LIMIT_STORAGE is a Redis URL but the Redis "
                                  "driver is not installed: pip install "
                                  "'legacy-bridge[redis]'") from None
            self._pool = ConnectionPool.from_url(storage_url, socket_timeout=0.25,
                                                 socket_connect_timeout=0.25)
            storage = RedisStorage("async+" + storage_url, implementation="redispy",
                                   connection_pool=self._pool)
        else:
            raise ConfigError("BRIDGE_RATE_LIMIT_STORAGE must be `memory` or a redis:// URL")
        self._limiter = MovingWindowRateLimiter(storage)
        self._in_flight: Counter[str] = Counter()

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()

    @property
    def active(self) -> bool:
        return bool(self.rules)

    @asynccontextmanager
    async def hold(self, label: str) -> AsyncIterator[None]:
        """Admit one request of `label` for as long as the block runs, or raise 429."""
        limit = self.rules.get(label)
        if limit is None:
            yield
            return
        if limit.rate is not None and not await self._allowed(limit.rate, label):
            self.metrics.rate_limited.labels(label, "rate").inc()
            raise RateLimited(f"more than {limit.rate} from this client; retry later",
                              {"Retry-After": str(await self._retry_after(limit.rate, label))})
        if limit.concurrent is not None and self._in_flight[label] >= limit.concurrent:
            self.metrics.rate_limited.labels(label, "concurrent").inc()
            raise RateLimited(f"more than {limit.concurrent} requests of this client in "
                              "flight; retry later", {"Retry-After": "1"})
        self._in_flight[label] += 1
        try:
            yield
        finally:
            self._in_flight[label] -= 1

    async def _allowed(self, rate: RateLimitItem, label: str) -> bool:
        try:
            return bool(await self._limiter.hit(rate, "client", label))
        except Exception as exc:  # Redis down or slow: let it through
            log.warning("rate limit storage unavailable; request let through",
                        error=type(exc).__name__)
            return True

    async def _retry_after(self, rate: RateLimitItem, label: str) -> int:
        try:
            stats = await self._limiter.get_window_stats(rate, "client", label)
            return max(1, math.ceil(stats.reset_time - time.time()))
        except Exception:
            return max(1, rate.get_expiry())
