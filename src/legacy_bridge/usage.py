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

from legacy_bridge import logs
from legacy_bridge.store import Store, UsageRow

log = logs.get("legacy_bridge.usage")

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
        """Write what was counted; on a store failure the counts stay for the next try."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        rows = [UsageRow(*key, tally.count, tally.last_seen) for key, tally in pending.items()]
        try:
            await self.store.later(self.store.add_usage, rows)
        except Exception:  # (a cancelled flush still writes: its thread goes on)
            for key, tally in pending.items():  # merged with what arrived meanwhile
                newer = self._pending.get(key)
                if newer is None:
                    self._pending[key] = tally
                else:
                    newer.count += tally.count
            raise

    async def run(self, every: float, most: float = 300.0) -> None:
        """Flush forever, every `every` seconds (cancelled at shutdown). A failed flush
        (the store restarting, a locked file) is logged and retried with a doubling
        wait of at most `most` seconds; nothing counted is lost meanwhile."""
        wait = every
        while True:
            await asyncio.sleep(wait)
            try:
                await self.flush()
            except Exception as exc:
                wait = min(wait * 2, most)
                log.warning("usage not written; retrying", error=type(exc).__name__,
                            retry_in_s=wait)
            else:
                wait = every
