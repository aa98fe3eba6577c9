"""Who still calls what: per client, route, parameter and legacy field returned.

Counted in memory on the request path (a few dictionary updates) and written
to the store in batches every `BRIDGE_USAGE_FLUSH_SECONDS` and at shutdown.
Clients are named by their token-table label, never by token. This is the
list of who still has to migrate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from legacy_bridge.store import Store, UsageRow

Key = tuple[str, str, str, str]  # client, route, kind, name


@dataclass(slots=True)
class _Tally:
    count: int
    last_seen: str


class Usage:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: dict[Key, _Tally] = {}

    def record(self, client: str, route: str, params: Iterable[str],
               fields: Iterable[str]) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        keys = [(client, route, "request", "")]
        keys += [(client, route, "param", name) for name in params]
        keys += [(client, route, "field", name) for name in fields]
        for key in keys:
            tally = self._pending.get(key)
            if tally is None:
                self._pending[key] = _Tally(1, now)
            else:
                tally.count += 1
                tally.last_seen = now

    def record_relayed(self, client: str, route: str, params: Iterable[str],
                       status: int) -> None:
        """An answer the old API gave. As for translated answers only what was
        served (below 400) counts; no fields, since its body passes through unread."""
        if status < 400:
            self.record(client, route, params, [])

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        if pending:
            rows = [UsageRow(*key, tally.count, tally.last_seen)
                    for key, tally in pending.items()]
            await self.store.later(self.store.add_usage, rows)

    async def run(self, every: float) -> None:
        """Flush forever, every `every` seconds (cancelled at shutdown)."""
        while True:
            await asyncio.sleep(every)
            await self.flush()
