"""The store's rows for course progress and runtime modes, a part of `store.Store`.

Kept apart so each file stays readable: `Store` holds the connection, the
schema and the usage and comparison rows; these methods use its `_read`,
`_write`, `_sql`, `_lock` and `_db` the same way.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class LessonRow:
    """Course progress the upstream cannot hold (gaps G1, G4): one per (learner, lesson).

    Positions are kept as the JSON number the client wrote (`180` stays `180`,
    `180.5` stays `180.5`): the legacy API answered them as stored.
    """

    user_id: str
    lesson_id: int
    course_id: int
    completed: bool  # as last seen or written
    video_progress: str
    last_position: str
    completed_at: str | None  # RFC 3339 UTC; when the proxy completed or first saw it
    completed_via_proxy_at: str | None  # read-your-writes: when the proxy completed it
    updated_at: str


@dataclass(frozen=True)
class ModeSetting:
    """A route's migration mode set while serving (runtime.py), and who set it."""

    route: str
    mode: Any  # a modes.Mode, checked by whoever sets it
    percent: int  # of clients sent to `mode`; the rest to the old API
    changed_at: str
    changed_by: str


@dataclass(frozen=True)
class ModeChange:
    at: str
    who: str
    route: str
    from_mode: str | None  # None: the table's (or BRIDGE_MODE's) mode
    from_percent: int | None
    to_mode: str | None
    to_percent: int | None


def _lesson_row(found: tuple[Any, ...]) -> LessonRow:
    user, lesson, course, done, video, position, at, via, updated = found
    return LessonRow(user, int(lesson), int(course), bool(done), video, position, at, via,
                     updated)


class ProgressRows:
    """Course progress (`lesson_progress`, imports, forwarded partial progress) and the
    routes' runtime modes with their audit trail."""

    _lock: threading.Lock
    _db: Any

    def _sql(self, text: str) -> str:
        raise NotImplementedError

    def _write(self, statements: list[tuple[str, Any]], many: bool = False) -> None:
        raise NotImplementedError

    def _read(self, text: str, args: list[Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def lessons(self, user_id: str, course_id: int) -> list[LessonRow]:
        rows = self._read("SELECT user_id, lesson_id, course_id, completed, video_progress, "
                          "last_position, completed_at, completed_via_proxy_at, updated_at "
                          "FROM lesson_progress WHERE user_id = ? AND course_id = ? "
                          "ORDER BY lesson_id", [user_id, course_id])
        return [_lesson_row(row) for row in rows]

    def apply_lesson(self, row: LessonRow, positions: frozenset[str]) -> LessonRow:
        """One write, atomic in the database, so it holds across replicas: the positions
        named are set (last writer wins), a completion is kept once made and its first
        time stays; the row as it is after the write."""
        given = {name: name in positions for name in ("video_progress", "last_position")}
        keep = {name: f"excluded.{name}" if on else f"lesson_progress.{name}"
                for name, on in given.items()}
        text = self._sql(
            "INSERT INTO lesson_progress VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, lesson_id) DO UPDATE SET "
            f"video_progress = {keep['video_progress']}, "
            f"last_position = {keep['last_position']}, "
            "completed = max(lesson_progress.completed, excluded.completed), "
            "completed_at = COALESCE(lesson_progress.completed_at, excluded.completed_at), "
            "completed_via_proxy_at = COALESCE(excluded.completed_via_proxy_at, "
            "lesson_progress.completed_via_proxy_at), updated_at = excluded.updated_at "
            "RETURNING user_id, lesson_id, course_id, completed, video_progress, "
            "last_position, completed_at, completed_via_proxy_at, updated_at")
        with self._transaction():
            found = self._db.execute(text, (
                row.user_id, row.lesson_id, row.course_id, int(row.completed),
                row.video_progress, row.last_position, row.completed_at,
                row.completed_via_proxy_at, row.updated_at)).fetchone()
        return _lesson_row(found)

    def update_positions(self, user_id: str, lesson_id: int, positions: dict[str, str],
                         updated_at: str) -> LessonRow | None:
        """Set the named positions of an existing row, atomically; None when there is
        no row (a new one is the caller's longer path)."""
        given = [(name, value) for name, value in positions.items()
                 if name in ("video_progress", "last_position")]
        sets = "".join(f"{name} = ?, " for name, _ in given)
        text = self._sql(
            f"UPDATE lesson_progress SET {sets}updated_at = ? "
            "WHERE user_id = ? AND lesson_id = ? "
            "RETURNING user_id, lesson_id, course_id, completed, video_progress, "
            "last_position, completed_at, completed_via_proxy_at, updated_at")
        with self._transaction():
            found = self._db.execute(text, (*(value for _, value in given), updated_at,
                                            user_id, lesson_id)).fetchone()
        return None if found is None else _lesson_row(found)

    def record_completions(self, rows: list[LessonRow]) -> None:
        """What a read saw of completion (a first sighting, a platform reset): rows are
        inserted, or their completion columns updated; stored positions are left alone,
        so a read never undoes a concurrent save."""
        self._write([(
            "INSERT INTO lesson_progress VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, lesson_id) DO UPDATE SET course_id = excluded.course_id, "
            "completed = excluded.completed, completed_at = excluded.completed_at, "
            "completed_via_proxy_at = excluded.completed_via_proxy_at, "
            "updated_at = excluded.updated_at",
            [(r.user_id, r.lesson_id, r.course_id, int(r.completed), r.video_progress,
              r.last_position, r.completed_at, r.completed_via_proxy_at, r.updated_at)
             for r in rows])], many=True)

    def insert_lessons(self, rows: list[LessonRow]) -> tuple[int, int]:
        """An import's rows, in one transaction: (new rows, completion times corrected).

        A row the store holds keeps its positions (the proxy may have saved newer ones
        since), but a completion the proxy only observed takes the old API's time: the
        old API knew when it happened, the proxy only when it first saw it (gap G4)."""
        added = corrected = 0
        with self._transaction():
            for r in rows:
                added += self._db.execute(self._sql(
                    "INSERT INTO lesson_progress VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (user_id, lesson_id) DO NOTHING"),
                    (r.user_id, r.lesson_id, r.course_id, int(r.completed),
                     r.video_progress, r.last_position, r.completed_at,
                     r.completed_via_proxy_at, r.updated_at)).rowcount
                if r.completed_at is not None:
                    corrected += self._db.execute(self._sql(
                        "UPDATE lesson_progress SET completed = 1, completed_at = ? "
                        "WHERE user_id = ? AND lesson_id = ? AND "
                        "completed_via_proxy_at IS NULL AND "
                        "(completed_at IS NULL OR completed_at <> ?)"),
                        (r.completed_at, r.user_id, r.lesson_id, r.completed_at)).rowcount
        return added, corrected

    def forwarded(self, user_id: str, topic_id: str) -> int:
        """The partial progress last sent upstream for a learner's topic (0: none)."""
        rows = self._read("SELECT progress FROM forwarded_progress WHERE user_id = ? AND "
                          "topic_id = ?", [user_id, topic_id])
        return int(rows[0][0]) if rows else 0

    def set_forwarded(self, user_id: str, topic_id: str, progress: int) -> None:
        """Record a partial progress sent upstream; it only ever rises."""
        self._write([("INSERT INTO forwarded_progress VALUES (?, ?, ?) "
                      "ON CONFLICT (user_id, topic_id) DO UPDATE SET "
                      "progress = max(forwarded_progress.progress, excluded.progress)",
                      (user_id, topic_id, progress))])

    def route_modes(self) -> list[ModeSetting]:
        rows = self._read("SELECT route, mode, percent, changed_at, changed_by "
                          "FROM route_modes ORDER BY route", [])
        return [ModeSetting(r, m, int(p), at, by) for r, m, p, at, by in rows]

    def set_route_mode(self, route: str, mode: str | None, percent: int, who: str) -> None:
        """Set (or with `mode` None clear) a route's runtime mode, with its audit row, in
        one transaction."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with self._transaction():
            before = self._db.execute(self._sql(
                "SELECT mode, percent FROM route_modes WHERE route = ?"),
                (route,)).fetchone()
            if mode is None:
                self._db.execute(self._sql("DELETE FROM route_modes WHERE route = ?"),
                                 (route,))
            else:
                self._db.execute(self._sql(
                    "INSERT INTO route_modes VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (route) DO UPDATE SET mode = excluded.mode, "
                    "percent = excluded.percent, changed_at = excluded.changed_at, "
                    "changed_by = excluded.changed_by"), (route, mode, percent, now, who))
            self._db.execute(self._sql(
                "INSERT INTO mode_audit (at, who, route, from_mode, from_percent, "
                "to_mode, to_percent) VALUES (?, ?, ?, ?, ?, ?, ?)"),
                (now, who, route, before[0] if before else None,
                 before[1] if before else None, mode, percent if mode else None))

    def mode_changes(self, route: str | None = None, limit: int = 100) -> list[ModeChange]:
        """The newest changes first."""
        sql = ("SELECT at, who, route, from_mode, from_percent, to_mode, to_percent "
               "FROM mode_audit")
        args: list[object] = []
        if route is not None:
            sql += " WHERE route = ?"
            args.append(route)
        rows = self._read(sql + f" ORDER BY id DESC LIMIT {int(limit)}", args)
        return [ModeChange(*row) for row in rows]

    def set_import_checkpoint(self, file_sha256: str, line: int) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._write([("INSERT INTO progress_imports VALUES (?, ?, ?) ON CONFLICT (file_sha256) "
                      "DO UPDATE SET line = excluded.line, updated_at = excluded.updated_at",
                      (file_sha256, line, now))])

    def import_checkpoint(self, file_sha256: str) -> int:
        """The last line of that file an import committed (0: none)."""
        rows = self._read("SELECT line FROM progress_imports WHERE file_sha256 = ?",
                          [file_sha256])
        return int(rows[0][0]) if rows else 0
