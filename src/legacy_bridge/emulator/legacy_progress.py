"""The legacy course-progress API itself (contract course-progress-legacy.md, seed 004).

The reference the proxy's course-progress routes are compared with, in shadow
mode and by crawls. Written from the contract, not from the proxy's tables:
its own courses and lessons (the contract's fixtures), its own records in its
own table, the literal upsert (so `completed: false` reverts, where the proxy
keeps a completion: gap G5), and `[]` for a learner it does not know (the
proxy answers 404: a documented deviation). Ben finished lesson 101 here long
ago, as on the platform.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from legacy_bridge.emulator.learning_path import BEN

LESSONS = {101: 42, 102: 42, 103: 42, 201: 43}  # lesson -> course
KEYS = ("user_id", "course_id", "lesson_id", "completed", "video_progress", "last_position",
        "completed_at")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}$")
MAX_ID = 2_147_483_647
BEN_FINISHED = "2024-03-15T10:30:00.000Z"


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _answer(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _positive(value: Any) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID:
        return value
    return None


class LegacyCourseProgress:
    def __init__(self, users: dict[str, tuple[str, str]]) -> None:
        """`users`: legacy bearer token -> (user_id, role)."""
        self.users = users
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE progress (user_id TEXT, lesson_id INTEGER, course_id INTEGER, "
                "completed INTEGER, video_progress TEXT, last_position TEXT, "
                "completed_at TEXT, PRIMARY KEY (user_id, lesson_id))")
            self._db.execute("INSERT INTO progress VALUES (?, 101, 42, 1, '0', '0', ?)",
                             (BEN, BEN_FINISHED))

    def _caller(self, request: Request) -> tuple[str, str]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        found = self.users.get(token.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise Refused(401, "unauthorized", "Authentication required")
        return found

    def _records(self, user: str, course: int | None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM progress WHERE user_id = ?", [user]
        if course is not None:
            sql += " AND course_id = ?"
            args.append(str(course))
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY course_id, lesson_id", args).fetchall()
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: tuple[Any, ...]) -> dict[str, Any]:
        user, lesson, course, done, video, position, at = row
        values = {"user_id": user, "course_id": course, "lesson_id": lesson,
                  "completed": bool(done), "video_progress": orjson.loads(video),
                  "last_position": orjson.loads(position), "completed_at": at}
        return {key: values[key] for key in KEYS}

    @staticmethod
    def _course(request: Request) -> int | None:
        given = request.query_params.getlist("courseId")
        if not given:
            return None
        value = _positive(given[0]) if len(given) == 1 and given[0].isdigit() else None
        if value is None:
            raise Refused(400, "invalid_parameter", "courseId must be a positive integer")
        return value

    async def own(self, request: Request) -> Response:
        try:
            user, _ = self._caller(request)
            if request.method == "GET":
                return _answer(self._records(user, self._course(request)))
            return _answer(self._upsert(user, await request.body()))
        except Refused as refused:
            return _answer({"error": {"status": refused.status, "code": refused.code,
                                      "message": refused.message}}, refused.status)

    async def admin(self, request: Request) -> Response:
        try:
            _, role = self._caller(request)
            if role != "admin":
                raise Refused(403, "forbidden", "admins only")
            learner = request.path_params["learnerId"]
            if not UUID.fullmatch(learner):
                raise Refused(400, "invalid_parameter", "learnerId must be a UUID")
            return _answer(self._records(learner.lower(), self._course(request)))
        except Refused as refused:
            return _answer({"error": {"status": refused.status, "code": refused.code,
                                      "message": refused.message}}, refused.status)

    def _upsert(self, user: str, body: bytes) -> dict[str, Any]:
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            fields = None
        if not isinstance(fields, dict):
            raise Refused(400, "invalid_body", "the body must be a JSON object")
        given = {k: v for k, v in fields.items() if v is not None}
        for name in ("course_id", "lesson_id"):
            if name not in given:
                raise Refused(400, "missing_field", f"Missing required fields: {name}")
        course, lesson = _positive(given["course_id"]), _positive(given["lesson_id"])
        if course is None or lesson is None:
            raise Refused(400, "invalid_field", "course_id and lesson_id are positive integers")
        if "completed" in given and not isinstance(given["completed"], bool):
            raise Refused(400, "invalid_field", "completed is a boolean")
        for name in ("video_progress", "last_position"):
            value = given.get(name, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
                    or (isinstance(value, float) and not math.isfinite(value)):
                raise Refused(400, "invalid_field", f"{name} is a number of seconds")
        if LESSONS.get(lesson) != course:
            raise Refused(400, "unknown_lesson", "no such lesson in that course")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        with self._lock, self._db:
            row = self._db.execute("SELECT * FROM progress WHERE user_id = ? AND lesson_id = ?",
                                   (user, lesson)).fetchone()
            current: dict[str, Any] = self._record(row) if row else {
                "completed": False, "video_progress": 0, "last_position": 0,
                "completed_at": None}
            for name in ("video_progress", "last_position"):
                if name in given:
                    current[name] = given[name]
            if "completed" in given:  # the literal upsert: false reverts
                if given["completed"] and not current["completed"]:
                    current["completed_at"] = now
                elif not given["completed"]:
                    current["completed_at"] = None
                current["completed"] = given["completed"]
            self._db.execute("INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?, ?, ?)", (
                user, lesson, course, int(current["completed"]),
                orjson.dumps(current["video_progress"]).decode(),
                orjson.dumps(current["last_position"]).decode(), current["completed_at"]))
            row = self._db.execute("SELECT * FROM progress WHERE user_id = ? AND lesson_id = ?",
                                   (user, lesson)).fetchone()
        return self._record(row)

