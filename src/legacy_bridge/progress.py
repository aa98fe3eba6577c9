"""A learner's lesson records over the Learning Path API and the progress store.

Completion lives upstream, one 0-100 progress per topic (a lesson is complete
when all of its topics are); playback positions and completion times live in
the store (gaps G1, G4). Reads: one `done` query per course. Writes: a
position save touches only the store (a new row reads `done` once); a
completion pre-reads `done`, then completes each missing topic in map order,
never sending a mutation twice. Costs are exact (course-progress-mapping.md).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from legacy_bridge import logs
from legacy_bridge.coursemap import Course, CourseMap, Lesson
from legacy_bridge.errors import BridgeError, CourseIdRequired, StoreFailed, UpstreamError
from legacy_bridge.progressrows import LessonRow
from legacy_bridge.progresstable import ProgressTable
from legacy_bridge.query import Document
from legacy_bridge.store import Store
from legacy_bridge.upstream import Upstream

log = logs.get("legacy_bridge.progress")
T = TypeVar("T")


@dataclass(frozen=True)
class Learner:
    user_id: str  # the legacy UUID, lower-case: what records carry
    auth_token: str  # the upstream user context; never logged


@dataclass(frozen=True)
class Write:
    course_id: int
    lesson_id: int
    completed: bool | None  # None: not in the body
    positions: dict[str, int | float]  # the positions the body gave


@dataclass(frozen=True)
class Written:
    record: dict[str, Any]
    not_reverted: bool  # "completed: false" on a completed lesson (G5)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Progress:
    def __init__(self, table: ProgressTable, courses: CourseMap, store: Store,
                 upstream: Upstream, api_key: str, ryw_seconds: float, max_courses: int,
                 now: Callable[[], datetime] = _utc_now) -> None:
        self.table, self.courses, self.store = table, courses, store
        self.upstream, self.api_key = upstream, api_key
        self.ryw = timedelta(seconds=ryw_seconds)
        self.max_courses = max_courses
        self.now = now
        # One writer per (learner, lesson) in this process, so a completion's mutations
        # go out once; across replicas the store's write is one atomic upsert.
        self._locks: weakref.WeakValueDictionary[tuple[str, int], asyncio.Lock] = (
            weakref.WeakValueDictionary())

    # -- reads ----------------------------------------------------------------

    async def read(self, learner: Learner, course_id: int | None) -> list[dict[str, Any]]:
        """The learner's records in one course (`[]` for a course the map lacks), or
        in every mapped course; sorted by course, then lesson."""
        if course_id is not None:
            course = self.courses.courses.get(course_id)
            return [] if course is None else await self._read_course(learner, course)
        courses = sorted(self.courses.courses.values(), key=lambda c: c.course_id)
        if len(courses) > self.max_courses:
            raise CourseIdRequired(f"courseId is required: more than {self.max_courses} "
                                   "courses are mapped")
        answers = await asyncio.gather(*(self._read_course(learner, c) for c in courses))
        return [record for answer in answers for record in answer]

    async def _read_course(self, learner: Learner, course: Course) -> list[dict[str, Any]]:
        done = await self._done(learner, course)
        rows = {r.lesson_id: r for r in await self._rows(learner, course)}
        now = self.now()
        records, seen, reset = [], [], []
        for lesson in sorted(course.lessons, key=lambda item: item.lesson_id):
            row = rows.get(lesson.lesson_id)
            upstream_done = [t in done for t in lesson.topics]
            if row is None and not any(upstream_done):
                continue  # Not Started: no record
            if all(upstream_done) or self._recent(row, now):
                if row is None or not row.completed or row.completed_at is None:
                    # a completion the proxy did not make: its time is when first seen (G4)
                    row = self._completed(row, learner, lesson, now, via_proxy=False)
                    seen.append(row)
            elif row is not None and (row.completed or row.completed_at is not None):
                # the platform no longer shows it, past read-your-writes: upstream decides
                row = replace(row, completed=False, completed_at=None,
                              completed_via_proxy_at=None, updated_at=self._stamp(now))
                reset.append(row)
            records.append(self._record(learner, lesson, row))
        if seen or reset:
            await self._store(self.store.record_completions, seen + reset)
        return records

    def _recent(self, row: LessonRow | None, now: datetime) -> bool:
        """Read-your-writes: a completion the proxy made counts for a while even if the
        upstream does not show it yet."""
        if row is None or row.completed_via_proxy_at is None:
            return False
        made = datetime.fromisoformat(row.completed_via_proxy_at.replace("Z", "+00:00"))
        return now - made < self.ryw

    async def _done(self, learner: Learner, course: Course) -> set[str]:
        """The topics the learner has completed in the course, as the upstream says."""
        t = self.table
        data = await self.upstream.query(t.endpoint, t.done,
                                         {t.done_course_variable: course.upstream_id},
                                         self.api_key, learner.auth_token)
        pages = data.get(t.done_field)
        if not isinstance(pages, list):
            raise UpstreamError("the upstream answered no pages")
        return {str(p[t.done_page_id]) for p in pages
                if isinstance(p, dict) and p.get(t.done_page_id) is not None}

    # -- writes ---------------------------------------------------------------

    async def write(self, learner: Learner, write: Write, lesson: Lesson) -> Written:
        """Upsert one record. 502/504 after a mutation went out leaves the store as it
        was: the client's retry converges, sending only the topics still missing (G8)."""
        course = self.courses.courses[lesson.course_id]
        if not write.completed:  # a position save on a known row: one atomic update
            saved = await self._store(self.store.update_positions, learner.user_id,
                                      lesson.lesson_id, self._positions(write),
                                      self._stamp(self.now()))
            if saved is not None:
                await self._forward_partial(learner, lesson, write, saved)
                return Written(self._record(learner, lesson, saved),
                               not_reverted=write.completed is False and saved.completed)
        key = (learner.user_id, lesson.lesson_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            row = await self._row(learner, course, lesson)
            now = self.now()
            completed = row is not None and row.completed
            if write.completed and not completed:
                sent = await self.complete(learner, course, [lesson])
                row = self._completed(row, learner, lesson, now, via_proxy=sent > 0)
            elif row is None:
                # a new row: read once, so the answer shows a completion made elsewhere
                done = await self._done(learner, course)
                if all(t in done for t in lesson.topics):
                    row = self._completed(None, learner, lesson, now, via_proxy=False)
            row = await self._apply(self._positioned(row, learner, lesson, write, now),
                                    frozenset(write.positions))
        await self._forward_partial(learner, lesson, write, row)
        # also a completion made elsewhere, first seen by this write's read
        return Written(self._record(learner, lesson, row),
                       not_reverted=write.completed is False and row.completed)

    async def _forward_partial(self, learner: Learner, lesson: Lesson, write: Write,
                               row: LessonRow) -> None:
        """G1 (c), opt-in (`forward_partial`): the playback share of a one-topic lesson
        with a known duration, sent as the topic's progress when it rises, at most 99.
        Best effort: the save stands whatever the upstream answers."""
        t = self.table
        seconds = write.positions.get("video_progress")
        if not (t.forward_partial and seconds is not None and lesson.duration_seconds
                and len(lesson.topics) == 1 and not row.completed):
            return
        share = min(99, int(100 * seconds // lesson.duration_seconds))
        topic = lesson.topics[0]
        if share <= 0 or share <= await self._store(self.store.forwarded, learner.user_id,
                                                    topic):
            return
        try:
            await self._mutate(learner, t.complete, {t.complete_topic_variable: topic,
                                                     t.complete_progress_variable: share})
        except BridgeError as exc:
            log.warning("partial progress not forwarded", code=exc.code)
            return
        await self._store(self.store.set_forwarded, learner.user_id, topic, share)

    async def complete(self, learner: Learner, course: Course, lessons: list[Lesson]) -> int:
        """Complete each topic of `lessons` the upstream lacks, in map order, after one
        read of what is done; how many topic mutations were sent."""
        mutations = self.completion_plan(course, lessons, await self._done(learner, course))
        for document, variables in mutations:
            await self._mutate(learner, document, variables)
        return sum(1 for document, _ in mutations if document is self.table.complete)

    def completion_plan(self, course: Course, lessons: list[Lesson], done: set[str]
                        ) -> list[tuple[Document, dict[str, Any]]]:
        """The mutations that complete `lessons`, given the topics already done: one per
        missing topic in map order, then the course status for an "explicit" course
        whose last required lesson this completes. Explain shows it without sending."""
        t = self.table
        missing = [topic for lesson in lessons for topic in lesson.topics if topic not in done]
        plan: list[tuple[Document, dict[str, Any]]] = [
            (t.complete, {t.complete_topic_variable: topic,
                          t.complete_progress_variable: t.complete_progress})
            for topic in dict.fromkeys(missing)]
        after = done | set(missing)
        if missing and course.completion == "explicit" and any(
                lesson.is_required for lesson in lessons) and all(
                topic in after for other in course.lessons if other.is_required
                for topic in other.topics):
            plan.append((t.set_status, {t.status_course_variable: course.upstream_id,
                                        t.status_variable: t.status_completed}))
        return plan

    # -- explain: the same decisions, nothing written -----------------------------

    def _step(self, document: Document, variables: dict[str, Any], sent: bool
              ) -> dict[str, Any]:
        return {"operation": document.operation_name, "query": document.text,
                "variables": variables, "sent_by_explain": sent}

    def read_plan(self, course_id: int | None) -> list[dict[str, Any]]:
        """The reads a GET sends: one per course (none for a course the map lacks)."""
        if course_id is not None:
            chosen = [self.courses.courses[course_id]] if course_id in self.courses.courses \
                else []
        else:
            chosen = sorted(self.courses.courses.values(), key=lambda c: c.course_id)
            if len(chosen) > self.max_courses:
                raise CourseIdRequired(f"courseId is required: more than "
                                       f"{self.max_courses} courses are mapped")
        t = self.table
        return [self._step(t.done, {t.done_course_variable: c.upstream_id}, False)
                for c in chosen]

    async def write_plan(self, learner: Learner, write: Write, lesson: Lesson
                         ) -> list[dict[str, Any]]:
        """What `write` would send now. A completion's read is made (as the learner) to
        know which topics are missing; the mutations are listed, never sent."""
        course = self.courses.courses[lesson.course_id]
        row = await self._row(learner, course, lesson)
        t = self.table
        read = (t.done, {t.done_course_variable: course.upstream_id})
        if write.completed and not (row is not None and row.completed):
            done = await self._done(learner, course)
            return [self._step(*read, True)] + [
                self._step(document, variables, False)
                for document, variables in self.completion_plan(course, [lesson], done)]
        return [self._step(*read, False)] if row is None else []

    async def _mutate(self, learner: Learner, document: Document,
                      variables: dict[str, Any]) -> None:
        t = self.table
        data = await self.upstream.mutate(t.endpoint, document, variables, self.api_key,
                                          learner.auth_token)
        if data.get(document.operation_name) is not True:
            raise UpstreamError("the upstream did not apply the change")

    # -- rows and records -------------------------------------------------------

    def _stamp(self, moment: datetime) -> str:
        digits = self.table.timestamp_digits
        text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        return (text[:len(text) - 6 + digits] if digits else text[:-7]) + "Z"

    def _completed(self, row: LessonRow | None, learner: Learner, lesson: Lesson,
                   now: datetime, via_proxy: bool) -> LessonRow:
        base = row or self._new_row(learner, lesson, now)
        at = base.completed_at or self._stamp(now)
        via = self._stamp(now) if via_proxy else base.completed_via_proxy_at
        return replace(base, completed=True, completed_at=at, completed_via_proxy_at=via,
                       updated_at=self._stamp(now))

    def _new_row(self, learner: Learner, lesson: Lesson, now: datetime) -> LessonRow:
        d = self.table.defaults
        return LessonRow(learner.user_id, lesson.lesson_id, lesson.course_id, False,
                         orjson.dumps(d["video_progress"]).decode(),
                         orjson.dumps(d["last_position"]).decode(), None, None,
                         self._stamp(now))

    @staticmethod
    def _positions(write: Write) -> dict[str, str]:
        """The positions a write names, as the JSON numbers the client wrote."""
        return {name: orjson.dumps(value).decode() for name, value in write.positions.items()}

    def _positioned(self, row: LessonRow | None, learner: Learner, lesson: Lesson,
                    write: Write, now: datetime) -> LessonRow:
        base = row or self._new_row(learner, lesson, now)
        given = self._positions(write)
        return replace(base, video_progress=given.get("video_progress", base.video_progress),
                       last_position=given.get("last_position", base.last_position),
                       updated_at=self._stamp(now))

    def _record(self, learner: Learner, lesson: Lesson, row: LessonRow | None) -> dict[str, Any]:
        d = self.table.defaults
        values: dict[str, Any] = {
            "user_id": learner.user_id, "course_id": lesson.course_id,
            "lesson_id": lesson.lesson_id,
            "completed": bool(row and row.completed),
            "video_progress": orjson.loads(row.video_progress) if row else d["video_progress"],
            "last_position": orjson.loads(row.last_position) if row else d["last_position"],
            "completed_at": row.completed_at if row and row.completed else None,
        }
        return {key: values[key] for key in self.table.keys}

    async def _rows(self, learner: Learner, course: Course) -> list[LessonRow]:
        return await self._store(self.store.lessons, learner.user_id, course.course_id)

    async def _row(self, learner: Learner, course: Course, lesson: Lesson
                   ) -> LessonRow | None:
        return next((r for r in await self._rows(learner, course)
                     if r.lesson_id == lesson.lesson_id), None)

    async def _apply(self, row: LessonRow, positions: frozenset[str]) -> LessonRow:
        return await self._store(self.store.apply_lesson, row, positions)

    async def _store(self, work: Callable[..., T], *args: Any) -> T:
        """A store call off the event loop; its failure is the contract's 500."""
        try:
            return await self.store.later(work, *args)
        except Exception as exc:
            log.error("progress store failed", error=type(exc).__name__)
            raise StoreFailed("the progress store failed") from None
