"""The Learning Path / Course GraphQL API (contract `learning-path.graphql`), emulated.

State lives in an SQLite database of its own (in memory unless a path is
given), seeded with the contract's fixtures: two courses, their topics, the
learners Ana and Ben (Ben has finished lesson 101 on the platform) and the
service user the API key acts as when a request carries no `authToken`.

Rules it keeps, from the contract (INFERRED lines included, since the proxy
must cope with them): progress is 0..100 and never goes down once at 100; an
unknown topic, course or `authToken` is a GraphQL error; a course completes
when its criterion topics (else all of its topics) reach 100, and only that
transition sets the status and writes one `course_completed` event (the
stand-in for certificates and e-mails).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError

SERVICE_USER = "svc-api-caller"
ANA = "0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e01"
BEN = "0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e02"
AUTH_TOKENS = {"at-ana": ANA, "at-ben": BEN}
PAGE_TYPES = {"text": "TextPage", "quiz": "QuizPage", "video": "VideoPage",
              "assignment": "AssignmentPage"}
STATUSES = ("started", "not-completed", "completed")

SCHEMA = """
CREATE TABLE lp_courses (id TEXT PRIMARY KEY, slug TEXT UNIQUE, sku TEXT UNIQUE, title TEXT);
CREATE TABLE lp_topics (id TEXT PRIMARY KEY, course_id TEXT NOT NULL, lesson_id TEXT,
  type TEXT NOT NULL, title TEXT, position INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE lp_criteria (course_id TEXT NOT NULL, type TEXT NOT NULL, required_ids TEXT);
CREATE TABLE lp_users (id TEXT PRIMARY KEY, name TEXT);
CREATE TABLE lp_auth_tokens (token TEXT PRIMARY KEY, user_id TEXT NOT NULL);
CREATE TABLE lp_topic_progress (user_id TEXT NOT NULL, topic_id TEXT NOT NULL,
  progress INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (user_id, topic_id));
CREATE TABLE lp_course_status (user_id TEXT NOT NULL, course_id TEXT NOT NULL,
  status TEXT NOT NULL, changed_at TEXT NOT NULL, PRIMARY KEY (user_id, course_id));
CREATE TABLE lp_events (user_id TEXT NOT NULL, course_id TEXT NOT NULL, kind TEXT NOT NULL,
  at TEXT NOT NULL);
"""

# (course, slug, sku, title, [(topic, lesson, type, title)], criterion topic ids or None)
FIXTURES: list[tuple[str, str, str, str, list[tuple[str, str, str, str]], list[str] | None]] = [
    ("course_abc123", "intro-to-data", "SKU-42", "Intro to Data", [
        ("page_text_001", "lsn_101", "text", "What data is"),
        ("page_video_002", "lsn_101", "video", "Data in practice"),
        ("page_quiz_003", "lsn_102", "quiz", "Check yourself"),
        ("page_video_004", "lsn_103", "video", "Further reading"),
    ], ["page_text_001", "page_video_002", "page_quiz_003"]),
    ("course_def456", "data-ethics", "SKU-43", "Data Ethics", [
        ("page_video_101", "lsn_201", "video", "Why it matters"),
    ], None),
]
EPOCH = "2024-03-15T10:30:00Z"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Caller:
    user_id: str  # the authToken's user, or the service user without one


class LearningPath:
    """The resolvers (`root`) over one database; `caller` turns a request's headers
    into the acting user."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(SCHEMA)
            self._seed()
        self.root = {
            "PagesCompletedByCourse": self._pages_completed,
            "UserCourseCompletionProgress": self._completion_progress,
            "UserCourseProgress": self._course_progress,
            "UpdateTopicAndCourseProgress": self._update_topic,
            "UpdateCourseStatus": self._update_course_status,
        }

    def _seed(self) -> None:
        db = self._db
        for course, slug, sku, title, topics, criterion in FIXTURES:
            db.execute("INSERT INTO lp_courses VALUES (?, ?, ?, ?)", (course, slug, sku, title))
            for position, (topic, lesson, kind, name) in enumerate(topics):
                db.execute("INSERT INTO lp_topics VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (topic, course, lesson, kind, name, position, EPOCH))
            if criterion is not None:
                db.execute("INSERT INTO lp_criteria VALUES (?, 'courseTopicViewed', ?)",
                           (course, ",".join(criterion)))
        db.executemany("INSERT INTO lp_users VALUES (?, ?)",
                       [(SERVICE_USER, "API caller"), (ANA, "Ana"), (BEN, "Ben")])
        db.executemany("INSERT INTO lp_auth_tokens VALUES (?, ?)", list(AUTH_TOKENS.items()))
        # Ben finished lesson 101 on the platform, before any proxy existed.
        db.executemany("INSERT INTO lp_topic_progress VALUES (?, ?, 100, ?)",
                       [(BEN, "page_text_001", EPOCH), (BEN, "page_video_002", EPOCH)])

    def caller(self, auth_token: str | None) -> Caller:
        """The acting user; raises GraphQLError (UNAUTHENTICATED) for an unknown token."""
        if auth_token is None:
            return Caller(SERVICE_USER)
        with self._lock:
            found = self._db.execute("SELECT user_id FROM lp_auth_tokens WHERE token = ?",
                                     (auth_token,)).fetchone()
        if found is None:
            raise GraphQLError("invalid authToken", extensions={"code": "UNAUTHENTICATED"})
        return Caller(found[0])

    # -- reads ----------------------------------------------------------------

    def _course(self, course_id: str) -> str:
        found = self._db.execute("SELECT id FROM lp_courses WHERE id = ?",
                                 (course_id,)).fetchone()
        if found is None:
            raise GraphQLError(f"unknown course {course_id!r}",
                               extensions={"code": "NOT_FOUND"})
        return str(found[0])

    def _done(self, user: str, course: str) -> list[tuple[Any, ...]]:
        return self._db.execute(
            "SELECT t.id, t.type, t.title, t.lesson_id, t.updated_at FROM lp_topics t "
            "JOIN lp_topic_progress p ON p.topic_id = t.id AND p.user_id = ? "
            "WHERE t.course_id = ? AND p.progress = 100 ORDER BY t.position",
            (user, course)).fetchall()

    def _pages_completed(self, info: Any, courseId: str) -> list[dict[str, Any]]:
        user = info.context.user_id
        with self._lock:
            rows = self._done(user, self._course(courseId))
        return [{"__typename": PAGE_TYPES[kind], "id": topic, "type": kind, "title": title,
                 "lessonId": lesson, "updatedAt": updated, "minPassingPercent": 70,
                 "asset": f"wistia_{topic}"} for topic, kind, title, lesson, updated in rows]

    def _required(self, course: str) -> list[str]:
        """The topics that complete the course: its criterion, else every topic."""
        found = self._db.execute("SELECT required_ids FROM lp_criteria WHERE course_id = ? "
                                 "AND type = 'courseTopicViewed'", (course,)).fetchone()
        if found is not None:
            return [t for t in str(found[0]).split(",") if t]
        return [r[0] for r in self._db.execute(
            "SELECT id FROM lp_topics WHERE course_id = ? ORDER BY position", (course,))]

    def _completion_progress(self, info: Any, id: str) -> list[dict[str, Any]]:  # noqa: A002
        user = info.context.user_id
        with self._lock:
            course = self._course(id)
            required = self._required(course)
            done = {r[0] for r in self._done(user, course)}
        completed = [t for t in required if t in done]
        return [{"type": "courseTopicViewed", "required": required, "completed": completed,
                 "percent": 100 * len(completed) // max(1, len(required))}]

    def _course_progress(self, info: Any, id: str) -> dict[str, Any]:  # noqa: A002
        user = info.context.user_id
        with self._lock:
            course = self._course(id)
            total = self._db.execute("SELECT count(*) FROM lp_topics WHERE course_id = ?",
                                     (course,)).fetchone()[0]
            done = len(self._done(user, course))
        return {"totalViews": done, "totalTime": 0,
                "percentComplete": 100 * done // max(1, total)}

    # -- writes ---------------------------------------------------------------

    def _update_topic(self, info: Any, topicId: str, progress: int) -> bool:
        if not 0 <= progress <= 100:
            raise GraphQLError("progress must be between 0 and 100")
        user = info.context.user_id
        with self._lock, self._db:
            found = self._db.execute("SELECT course_id FROM lp_topics WHERE id = ?",
                                     (topicId,)).fetchone()
            if found is None:
                raise GraphQLError(f"unknown topic {topicId!r}", extensions={"code": "NOT_FOUND"})
            now = _now()
            # never down once at 100: completion is not reverted
            self._db.execute(
                "INSERT INTO lp_topic_progress VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, topic_id) DO UPDATE SET "
                "progress = CASE WHEN progress = 100 THEN 100 ELSE excluded.progress END, "
                "updated_at = excluded.updated_at", (user, topicId, progress, now))
            course = str(found[0])
            done = {r[0] for r in self._done(user, course)}
            if all(t in done for t in self._required(course)):
                self._set_status(user, course, "completed", now)
        return True

    def _set_status(self, user: str, course: str, status: str, at: str) -> None:
        before = self._db.execute("SELECT status FROM lp_course_status WHERE user_id = ? AND "
                                  "course_id = ?", (user, course)).fetchone()
        if before is not None and before[0] == status:
            return
        self._db.execute("INSERT INTO lp_course_status VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (user_id, course_id) DO UPDATE SET "
                         "status = excluded.status, changed_at = excluded.changed_at",
                         (user, course, status, at))
        if status == "completed":
            self._db.execute("INSERT INTO lp_events VALUES (?, ?, 'course_completed', ?)",
                             (user, course, at))

    def _update_course_status(self, info: Any, status: str, id: str | None = None,  # noqa: A002
                              slug: str | None = None, sku: str | None = None,
                              statusChangeDate: str | None = None) -> bool:
        given = [(c, v) for c, v in (("id", id), ("slug", slug), ("sku", sku)) if v is not None]
        if len(given) != 1:
            raise GraphQLError("exactly one of id, slug or sku is required")
        if status not in STATUSES:
            raise GraphQLError(f"status must be one of {', '.join(STATUSES)}")
        at = statusChangeDate or _now()
        if at > _now():
            raise GraphQLError("statusChangeDate must not be in the future")
        column, value = given[0]
        with self._lock, self._db:
            found = self._db.execute(f"SELECT id FROM lp_courses WHERE {column} = ?",
                                     (value,)).fetchone()
            if found is None:
                raise GraphQLError("unknown course", extensions={"code": "NOT_FOUND"})
            self._set_status(info.context.user_id, str(found[0]), status, at)
        return True

    # -- for tests and the demo ----------------------------------------------

    def events(self, user: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT user_id, course_id, kind, at FROM lp_events "
                                    "ORDER BY rowid").fetchall()
        return [{"user_id": u, "course_id": c, "kind": k, "at": a}
                for u, c, k, a in rows if user in (None, u)]

    def status(self, user: str, course: str) -> str | None:
        with self._lock:
            found = self._db.execute("SELECT status FROM lp_course_status WHERE user_id = ? "
                                     "AND course_id = ?", (user, course)).fetchone()
        return None if found is None else str(found[0])
