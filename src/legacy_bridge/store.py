"""Where the proxy keeps what must survive a restart: the usage report and the
shadow comparisons. SQLite (`BRIDGE_STORE_URL=sqlite:///path`).

Writes are batched by their callers and run in a worker thread; the request
path never waits on this file.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from legacy_bridge.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
  client TEXT NOT NULL, route TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  count INTEGER NOT NULL, last_seen TEXT NOT NULL,
  PRIMARY KEY (client, route, kind, name)
);
CREATE TABLE IF NOT EXISTS comparisons (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, route TEXT NOT NULL,
  request TEXT NOT NULL, legacy_status INTEGER NOT NULL, bridge_status INTEGER NOT NULL,
  agrees INTEGER NOT NULL, differences TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_comparisons_route_at ON comparisons (route, at);
"""


@dataclass(frozen=True)
class UsageRow:
    client: str  # the token table's label
    route: str  # the mapping's name: "progress"
    kind: str  # "request", "param" or "field"
    name: str  # the parameter or legacy field ("" for requests)
    count: int
    last_seen: str  # RFC 3339, UTC


@dataclass(frozen=True)
class ComparisonRow:
    at: str  # RFC 3339 with microseconds, UTC
    route: str
    request: str  # path and query; tokens travel in headers and are never stored
    legacy_status: int
    bridge_status: int
    agrees: bool
    differences: str  # JSON list of {record, path, legacy, bridge}, PII hashed


class Store:
    def __init__(self, url: str, keep_comparisons: int = 100_000,
                 keep_days: float = 30.0) -> None:
        self.keep_comparisons = keep_comparisons
        self.keep_days = keep_days
        if not url.startswith("sqlite:///"):
            raise ConfigError(f"BRIDGE_STORE_URL must be sqlite:///<path> (got a "
                              f"{url.split(':', 1)[0]!r} URL)")
        self.path = Path(url.removeprefix("sqlite:///"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._db:
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add_usage(self, rows: list[UsageRow]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (client, route, kind, name) DO UPDATE SET "
                "count = count + excluded.count, "
                "last_seen = max(last_seen, excluded.last_seen)",
                [(r.client, r.route, r.kind, r.name, r.count, r.last_seen) for r in rows])

    def usage(self) -> list[UsageRow]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM usage ORDER BY client, route, kind, "
                                    "count DESC, name").fetchall()
        return [UsageRow(*row) for row in rows]

    def add_comparison(self, row: ComparisonRow) -> None:
        cutoff = (datetime.now(UTC) - timedelta(days=self.keep_days)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock, self._db:
            self._db.execute("INSERT INTO comparisons (at, route, request, legacy_status, "
                             "bridge_status, agrees, differences) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (row.at, row.route, row.request, row.legacy_status,
                              row.bridge_status, int(row.agrees), row.differences))
            # retention: by age, and by count (newest kept)
            self._db.execute("DELETE FROM comparisons WHERE at < ?", (cutoff,))
            self._db.execute("DELETE FROM comparisons WHERE id <= (SELECT MAX(id) FROM "
                             "comparisons) - ?", (self.keep_comparisons,))

    def comparisons(self, since: str = "", route: str | None = None) -> list[ComparisonRow]:
        sql = ("SELECT at, route, request, legacy_status, bridge_status, agrees, differences "
               "FROM comparisons WHERE at >= ?")
        args: list[object] = [since]
        if route is not None:
            sql += " AND route = ?"
            args.append(route)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        return [ComparisonRow(a, r, q, ls, bs, bool(ok), d) for a, r, q, ls, bs, ok, d in rows]
