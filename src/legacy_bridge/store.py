"""Where the proxy keeps what must survive a restart: the usage report, the
shadow comparisons, and the course progress the upstream cannot hold.

`BRIDGE_STORE_URL=sqlite:///path` (the default, one replica) or
`postgresql://user:pass@host/db` (many replicas: every replica's usage and
comparisons land in one place). Both speak the same SQL but for placeholders
and a few type names. Writes are batched by their callers and run in a worker
thread (`Store.later`); the request path never waits on the store, and
shutdown (`Store.aclose`) waits for every write already handed to a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from legacy_bridge.errors import ConfigError
from legacy_bridge.progressrows import ProgressRows

T = TypeVar("T")

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
  client TEXT NOT NULL, route TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  count INTEGER NOT NULL, last_seen TEXT NOT NULL,
  PRIMARY KEY (client, route, kind, name)
);
CREATE TABLE IF NOT EXISTS comparisons (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, route TEXT NOT NULL,
  request TEXT NOT NULL, legacy_status INTEGER NOT NULL, bridge_status INTEGER NOT NULL,
  agrees INTEGER NOT NULL, differences TEXT NOT NULL, golden TEXT
);
CREATE INDEX IF NOT EXISTS ix_comparisons_route_at ON comparisons (route, at);
CREATE TABLE IF NOT EXISTS lesson_progress (
  user_id TEXT NOT NULL, lesson_id BIGINT NOT NULL, course_id BIGINT NOT NULL,
  completed INTEGER NOT NULL, video_progress TEXT NOT NULL, last_position TEXT NOT NULL,
  completed_at TEXT, completed_via_proxy_at TEXT, updated_at TEXT NOT NULL,
  PRIMARY KEY (user_id, lesson_id)
);
CREATE TABLE IF NOT EXISTS progress_imports (
  file_sha256 TEXT PRIMARY KEY, line BIGINT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS forwarded_progress (
  user_id TEXT NOT NULL, topic_id TEXT NOT NULL, progress INTEGER NOT NULL,
  PRIMARY KEY (user_id, topic_id)
);
CREATE TABLE IF NOT EXISTS route_modes (
  route TEXT PRIMARY KEY, mode TEXT NOT NULL, percent INTEGER NOT NULL,
  changed_at TEXT NOT NULL, changed_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mode_audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL,
  route TEXT NOT NULL, from_mode TEXT, from_percent INTEGER, to_mode TEXT,
  to_percent INTEGER
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


@dataclass(frozen=True)
class ComparisonRow:
    at: str  # RFC 3339 with microseconds, UTC
    route: str
    request: str  # path and query; tokens travel in headers and are never stored
    legacy_status: int
    bridge_status: int
    agrees: bool
    differences: str  # JSON list of {record, path, legacy, bridge}, PII hashed
    golden: str | None = None  # a mismatch as a golden test case (JSON), for export


POSTGRES_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS usage (
  client TEXT NOT NULL, route TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  count BIGINT NOT NULL, last_seen TEXT NOT NULL,
  PRIMARY KEY (client, route, kind, name))""",
    """CREATE TABLE IF NOT EXISTS comparisons (
  id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, route TEXT NOT NULL,
  request TEXT NOT NULL, legacy_status INTEGER NOT NULL, bridge_status INTEGER NOT NULL,
  agrees INTEGER NOT NULL, differences TEXT NOT NULL, golden TEXT)""",
    "CREATE INDEX IF NOT EXISTS ix_comparisons_route_at ON comparisons (route, at)",
    """CREATE TABLE IF NOT EXISTS lesson_progress (
  user_id TEXT NOT NULL, lesson_id BIGINT NOT NULL, course_id BIGINT NOT NULL,
  completed INTEGER NOT NULL, video_progress TEXT NOT NULL, last_position TEXT NOT NULL,
  completed_at TEXT, completed_via_proxy_at TEXT, updated_at TEXT NOT NULL,
  PRIMARY KEY (user_id, lesson_id))""",
    """CREATE TABLE IF NOT EXISTS progress_imports (
  file_sha256 TEXT PRIMARY KEY, line BIGINT NOT NULL, updated_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS forwarded_progress (
  user_id TEXT NOT NULL, topic_id TEXT NOT NULL, progress INTEGER NOT NULL,
  PRIMARY KEY (user_id, topic_id))""",
    """CREATE TABLE IF NOT EXISTS route_modes (
  route TEXT PRIMARY KEY, mode TEXT NOT NULL, percent INTEGER NOT NULL,
  changed_at TEXT NOT NULL, changed_by TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS mode_audit (
  id BIGSERIAL PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL, route TEXT NOT NULL,
  from_mode TEXT, from_percent INTEGER, to_mode TEXT, to_percent INTEGER)""",
]

# Columns added after a table's first version, so a store written by an older
# proxy is brought up to date at start-up: (table, column, type).
ADDED_COLUMNS = [("comparisons", "golden", "TEXT")]


class Store(ProgressRows):
    def __init__(self, url: str, keep_comparisons: int = 100_000,
                 keep_days: float = 30.0) -> None:
        self.keep_comparisons = keep_comparisons
        self.keep_days = keep_days
        self._lock = threading.Lock()
        self._writing: set[asyncio.Future[Any]] = set()
        self._db: Any
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            # WAL: a write is one append, readers never wait on it, and a crash of
            # the process loses nothing committed (only power loss may lose the last).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._mark, self._greatest = "?", "max"
            with self._lock, self._db:
                self._db.executescript(SQLITE_SCHEMA)
                self._add_sqlite_columns()
        elif url.startswith(("postgresql://", "postgres://")):
            try:  # the driver is the [postgres] extra: only deployments using it need it
                import psycopg
            except ModuleNotFoundError:
                raise ConfigError("BRIDGE_STORE_URL is a PostgreSQL URL but the driver is "
                                  "not installed: pip install 'legacy-bridge[postgres]'"
                                  ) from None

            self._db = psycopg.connect(url, autocommit=False)
            self._mark, self._greatest = "%s", "GREATEST"
            with self._lock:
                for statement in POSTGRES_SCHEMA:
                    self._schema_step(statement)
                for table, column, kind in ADDED_COLUMNS:
                    self._schema_step(
                        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        else:
            raise ConfigError(f"BRIDGE_STORE_URL must be sqlite:///<path> or "
                              f"postgresql://... (got a {url.split(':', 1)[0]!r} URL)")

    def _schema_step(self, statement: str) -> None:
        try:
            with self._db.transaction():
                self._db.execute(statement)
        except Exception:  # two replicas creating at once: the other one won
            self._db.rollback()

    def _add_sqlite_columns(self) -> None:
        for table, column, kind in ADDED_COLUMNS:
            cursor = self._db.execute(f"SELECT * FROM {table} LIMIT 0")
            if column not in [d[0] for d in cursor.description]:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _sql(self, text: str) -> str:
        return text.replace("?", self._mark).replace("max(", f"{self._greatest}(")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction on the connection: committed at the end, rolled back on any
        error (the lock held throughout)."""
        with self._lock:
            try:
                yield
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise

    def _write(self, statements: list[tuple[str, Any]], many: bool = False) -> None:
        with self._transaction():
            for text, args in statements:
                if many:
                    self._db.cursor().executemany(self._sql(text), args)
                else:
                    self._db.execute(self._sql(text), args)

    def _read(self, text: str, args: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            rows = self._db.execute(self._sql(text), args).fetchall()
            self._db.commit()  # end the read transaction (PostgreSQL)
        return [tuple(row) for row in rows]

    async def later(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work(*args)` in a worker thread; its result.

        Cancelling the caller cannot stop a thread that has started, so the
        work is tracked until it ends: `aclose` waits for it instead of
        closing the connection under it (SQLite crashes the process then).
        """
        future = asyncio.ensure_future(asyncio.to_thread(work, *args))
        self._writing.add(future)
        future.add_done_callback(self._writing.discard)
        return await asyncio.shield(future)

    async def aclose(self) -> None:
        if self._writing:
            await asyncio.gather(*self._writing, return_exceptions=True)
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add_usage(self, rows: list[UsageRow]) -> None:
        self._write([(
            "INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (client, route, kind, name) DO UPDATE SET "
            "count = usage.count + excluded.count, "
            "last_seen = max(usage.last_seen, excluded.last_seen)",
            [(r.client, r.route, r.kind, r.name, r.count, r.last_seen) for r in rows])],
            many=True)

    def usage(self) -> list[UsageRow]:
        rows = self._read("SELECT client, route, kind, name, count, last_seen FROM usage "
                          "ORDER BY client, route, kind, count DESC, name", [])
        return [UsageRow(*row) for row in rows]

    def add_comparison(self, row: ComparisonRow) -> None:
        cutoff = (datetime.now(UTC) - timedelta(days=self.keep_days)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        self._write([
            ("INSERT INTO comparisons (at, route, request, legacy_status, bridge_status, "
             "agrees, differences, golden) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
             (row.at, row.route, row.request, row.legacy_status, row.bridge_status,
              int(row.agrees), row.differences, row.golden)),
            # retention: by age, and by count (the newest are kept)
            ("DELETE FROM comparisons WHERE at < ?", (cutoff,)),
            ("DELETE FROM comparisons WHERE id <= (SELECT MAX(id) FROM comparisons) - ?",
             (self.keep_comparisons,)),
        ])

    def comparisons(self, since: str = "", route: str | None = None) -> list[ComparisonRow]:
        return list(self.iter_comparisons(since, route, golden=True))

    def iter_comparisons(self, since: str = "", route: str | None = None,
                         golden: bool = False, batch: int = 1000) -> Iterator[ComparisonRow]:
        """Comparisons oldest first, read `batch` at a time: a report over a full store
        holds one batch, never the whole table; golden cases only when asked for."""
        sql = ("SELECT id, at, route, request, legacy_status, bridge_status, agrees, "
               f"differences, {'golden' if golden else 'NULL'} FROM comparisons "
               "WHERE at >= ? AND id > ?")
        if route is not None:
            sql += " AND route = ?"
        last = 0
        while True:
            args: list[object] = [since, last, *([route] if route is not None else [])]
            rows = self._read(sql + f" ORDER BY id LIMIT {int(batch)}", args)
            for _, a, r, q, ls, bs, ok, d, g in rows:
                yield ComparisonRow(a, r, q, ls, bs, bool(ok), d, g)
            if len(rows) < batch:
                return
            last = rows[-1][0]

    def golden_cases(self, route: str | None, limit: int) -> list[ComparisonRow]:
        """The newest `limit` mismatches that carry a golden case, oldest first."""
        sql = ("SELECT at, route, request, legacy_status, bridge_status, agrees, differences, "
               "golden FROM comparisons WHERE golden IS NOT NULL")
        args: list[object] = []
        if route is not None:
            sql += " AND route = ?"
            args.append(route)
        rows = self._read(sql + f" ORDER BY id DESC LIMIT {int(limit)}", args)
        return [ComparisonRow(a, r, q, ls, bs, bool(ok), d, g)
                for a, r, q, ls, bs, ok, d, g in reversed(rows)]
