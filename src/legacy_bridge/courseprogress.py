"""The course-progress surface: `/api/progress` (read, upsert) and the admin read.

Each route of the course-progress table is one `pipeline.Surface`. The checks
run in the contract's order, and nothing goes upstream before all of them
passed: token (401) -> role and platform identity (403) -> path and query
(400) -> the admin's learner (404) -> body (`invalid_body`, `missing_field`,
`invalid_field`) -> course map (`unknown_lesson`). Then `progress.Progress`
reads or writes, and the answer is the legacy record (or a bare array of them).
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from legacy_bridge.auth import Authenticator, Client, Learners
from legacy_bridge.bodies import read_body
from legacy_bridge.coursemap import MAX_ID, CourseMap, Lesson
from legacy_bridge.errors import (
    Forbidden,
    InvalidBody,
    InvalidField,
    InvalidParameter,
    MissingField,
    NotFound,
    UnknownLesson,
    UpstreamTimeout,
)
from legacy_bridge.modes import Mode
from legacy_bridge.pipeline import Comparison
from legacy_bridge.progress import Learner, Progress, Write
from legacy_bridge.progresstable import ProgressRoute, ProgressTable
from legacy_bridge.responses import json_response
from legacy_bridge.shadow import Tape, diff_record_lists
from legacy_bridge.usage import Usage

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}$")
DIGITS = re.compile(r"^[0-9]+$")
BODY_MAX_BYTES = 16_384  # a record is ~200 bytes; more is not a progress save


def positive_id(text: str) -> int | None:
    """A legacy id: base-10 digits, no sign or spaces, 1..2147483647."""
    if not DIGITS.fullmatch(text):
        return None
    value = int(text) if len(text) <= 10 else MAX_ID + 1
    return value if 1 <= value <= MAX_ID else None


class CourseProgressRoute:
    def __init__(self, route: ProgressRoute, table: ProgressTable, courses: CourseMap,
                 progress: Progress, auth: Authenticator, learners: Learners, usage: Usage,
                 deadline: float, keep_pii: bool = False) -> None:
        self.route, self.table, self.courses = route, table, courses
        self.progress, self.auth, self.learners, self.usage = progress, auth, learners, usage
        self.deadline, self.keep_pii = deadline, keep_pii
        self.name = route.name
        self.mode: Mode | None = table.mode
        self._path_regex = compile_path(route.path)[0]

    # -- the pipeline's steps ---------------------------------------------------

    def admit(self, request: Request) -> Client:
        """Token (401), then role and platform identity (403); before any body is read."""
        client = self.auth.client(request.headers.get("authorization"))
        request.state.client = client.label
        if client.user_id is None:
            raise Forbidden("this token is not a course-progress user")
        if self.route.role == "admin" and client.role != "admin":
            raise Forbidden("this route is for admins")
        if self.route.learner == "caller" and self.learners.auth_token(client.user_id) is None:
            raise Forbidden("this user has no platform identity")
        return client

    async def receive(self, request: Request) -> bytes | None:
        if request.method == "GET":
            return None
        return await read_body(request, BODY_MAX_BYTES, self.deadline, InvalidBody, "the body")

    async def translate(self, request: Request, body: bytes | None, tape: Tape | None = None,
                        count_usage: bool = True) -> Response:
        client = self.admit(request)
        learner_id = self._path_learner(request) if self.route.learner == "path" else None
        course_id = self._course_param(request) if request.method == "GET" else None
        learner = self._learner(learner_id or client.user_id or "")
        write = self._write(body or b"") if request.method != "GET" else None
        try:
            async with asyncio.timeout(self.deadline):
                if write is None:
                    records = await self.progress.read(learner, course_id)
                else:
                    written = await self.progress.write(learner, *write)
        except TimeoutError:
            raise UpstreamTimeout("the upstream did not answer in time") from None
        self._count(client, request, count_usage)
        if write is None:
            return json_response(records)
        headers = {"Warning": self.table.not_reverted} if written.not_reverted else None
        return json_response(written.record, headers=headers)

    def relayable(self, request: Request) -> None:
        if self.route.learner == "path":
            self._path_learner(request)

    def relayed_params(self, request: Request) -> list[str]:
        return [p for p in request.query_params if p == self.table.course_param]

    def comparison(self, request: Request, body: bytes | None) -> Comparison | None:
        """Reads are compared record by record. A write goes to the primary side only
        (never sent twice), and is not compared."""
        if request.method != "GET":
            return None
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Comparison(target, diff=lambda legacy, bridge: diff_record_lists(
            self.name, self.table.compare, legacy, bridge, self.keep_pii))

    # -- explain ----------------------------------------------------------------

    def matches(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` is this route's, else None."""
        found = self._path_regex.fullmatch(path)
        return found.groupdict() if found else None

    async def explain(self, request: Request, learner_id: str | None) -> dict[str, Any]:
        """What a legacy call (`request`, built from the explained URL and body) would
        send upstream, as the learner: a read is made to know which topics are missing
        (and says so); no mutation is ever sent."""
        if self.route.learner == "path":
            learner_id = self._path_learner(request)
        elif learner_id is None or not UUID.fullmatch(learner_id):
            raise InvalidParameter("learner must be the UUID of the learner to explain as")
        learner = self._learner(learner_id.lower())
        out: dict[str, Any] = {"route": self.name, "method": request.method,
                               "learner": learner.user_id}
        if request.method == "GET":
            steps = self.progress.read_plan(self._course_param(request))
        else:
            write, lesson = self._write(await request.body())
            steps = await self.progress.write_plan(learner, write, lesson)
        out["upstream"] = steps
        out["upstream_requests"] = len(steps)
        return out

    # -- parsing, in the contract's order -----------------------------------------

    def _path_learner(self, request: Request) -> str:
        assert self.route.path_param is not None
        value = request.path_params[self.route.path_param]
        if not UUID.fullmatch(value):
            raise InvalidParameter(f"{self.route.path_param} must be a UUID")
        return str(value).lower()

    def _course_param(self, request: Request) -> int | None:
        name = self.table.course_param
        given = request.query_params.getlist(name)
        if not given:
            return None
        value = positive_id(given[0]) if len(given) == 1 else None
        if value is None:
            raise InvalidParameter(f"{name} must be one positive integer")
        return value

    def _learner(self, user_id: str) -> Learner:
        token = self.learners.auth_token(user_id)
        if token is None:  # the caller's own identity was checked in admit (403)
            raise NotFound("no such learner")
        return Learner(user_id, token)

    def _write(self, body: bytes) -> tuple[Write, Lesson]:
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidBody("the body must be a JSON object") from None
        if not isinstance(fields, dict):
            raise InvalidBody("the body must be a JSON object")
        present = {k: v for k, v in fields.items() if v is not None}  # null counts as absent
        for name in ("course_id", "lesson_id"):
            if name not in present:
                raise MissingField(f"{name} is required")
        course_id, lesson_id = _id(present, "course_id"), _id(present, "lesson_id")
        completed = present.get("completed")
        if completed is not None and not isinstance(completed, bool):
            raise InvalidField("completed must be true or false")
        positions: dict[str, int | float] = {}
        for name in ("video_progress", "last_position"):
            if name in present:
                positions[name] = _seconds(present, name)
        lesson = self.courses.lesson(course_id, lesson_id)
        if lesson is None:
            raise UnknownLesson(f"lesson {lesson_id} is not in course {course_id}")
        return Write(course_id, lesson_id, completed, positions), lesson

    def _count(self, client: Client, request: Request, count_usage: bool) -> None:
        if count_usage:
            self.usage.record(client.label, self.name, self.relayed_params(request), [])


def _id(fields: dict[str, Any], name: str) -> int:
    value = fields[name]
    if isinstance(value, str):
        parsed = positive_id(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        parsed = value if 1 <= value <= MAX_ID else None
    else:
        parsed = None
    if parsed is None:
        raise InvalidField(f"{name} must be a positive integer")
    return parsed


def _seconds(fields: dict[str, Any], name: str) -> int | float:
    value = fields[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)) or value < 0:
        raise InvalidField(f"{name} must be a number of seconds, 0 or more")
    return value
