"""Where the proxy keeps what must survive a restart: the usage report (and, next,
the comparison diffs). SQLite by default (`BRIDGE_STORE_URL=sqlite:///path`).

Writes are batched by their callers and run in a worker thread; the request
path never waits on this file.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from legacy_bridge.errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
  client TEXT NOT NULL, route TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  count INTEGER NOT NULL, last_seen TEXT NOT NULL,
  PRIMARY KEY (client, route, kind, name)
);
"""


@dataclass(frozen=True)
class UsageRow:
    client: str  # the token table's label
    route: str  # the mapping's name: "progress"
    kind: str  # "request", "param" or "field"
    name: str  # the parameter or legacy field ("" for requests)
    count: int
    last_seen: str  # RFC 3339, UTC


class Store:
    def __init__(self, url: str) -> None:
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
