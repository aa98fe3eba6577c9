"""The course map: legacy course and lesson ids -> the upstream course and its topics.

Nothing upstream lists a course's lessons (gap G2), so the content migration
writes this file, `course-map.toml` in the mappings folder (a reserved name:
never read as a route table). It is checked at start-up; a mistake stops the
proxy naming the file, the key and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from legacy_bridge.errors import MappingError
from legacy_bridge.operations import read_table

COURSE_MAP_FILE = "course-map.toml"
MAX_ID = 2_147_483_647  # legacy ids are PostgreSQL integers


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawLesson(_Strict):
    lesson_id: StrictInt = Field(ge=1, le=MAX_ID)
    topics: tuple[StrictStr, ...]
    is_required: StrictBool = True
    duration_seconds: float | None = Field(None, gt=0)


class RawCourse(_Strict):
    course_id: StrictInt = Field(ge=1, le=MAX_ID)
    upstream_id: StrictStr = Field(min_length=1)
    # "upstream": the platform decides course completion (its own criteria);
    # "explicit": the proxy also sends UpdateCourseStatus when the last required
    # lesson completes (G6, opt-in per course).
    completion: Literal["upstream", "explicit"] = "upstream"
    lessons: tuple[RawLesson, ...] = Field(min_length=1)


class RawCourseMap(_Strict):
    courses: tuple[RawCourse, ...] = ()


@dataclass(frozen=True)
class Lesson:
    lesson_id: int
    course_id: int
    topics: tuple[str, ...]  # upstream page ids, in the order completions are sent
    is_required: bool
    duration_seconds: float | None


@dataclass(frozen=True)
class Course:
    course_id: int
    upstream_id: str
    completion: Literal["upstream", "explicit"]
    lessons: tuple[Lesson, ...]


@dataclass(frozen=True)
class CourseMap:
    file: str
    courses: dict[int, Course]
    lessons: dict[int, Lesson]

    def lesson(self, course_id: int, lesson_id: int) -> Lesson | None:
        """The lesson, when it belongs to that course."""
        found = self.lessons.get(lesson_id)
        return found if found is not None and found.course_id == course_id else None


def load_course_map(directory: Path) -> CourseMap | None:
    """`course-map.toml` of the mappings folder, checked; None when there is none."""
    path = directory / COURSE_MAP_FILE
    if not path.exists():
        return None
    file = str(path)
    raw = read_table(path, RawCourseMap, "The course map")
    courses: dict[int, Course] = {}
    lessons: dict[int, Lesson] = {}
    topic_owner: dict[str, str] = {}
    for c, course in enumerate(raw.courses):
        key = f"courses.{c}"
        if course.course_id in courses:
            raise MappingError(file, f"{key}.course_id",
                               f"course {course.course_id} is mapped twice",
                               "keep one [[courses]] entry per legacy course")
        built: list[Lesson] = []
        for n, lesson in enumerate(course.lessons):
            where = f"{key}.lessons.{n}"
            if lesson.lesson_id in lessons or any(b.lesson_id == lesson.lesson_id
                                                  for b in built):
                raise MappingError(file, f"{where}.lesson_id",
                                   f"lesson {lesson.lesson_id} is mapped twice",
                                   "a legacy lesson id belongs to one course, once")
            if not lesson.topics:
                raise MappingError(file, f"{where}.topics",
                                   f"lesson {lesson.lesson_id} has no topics",
                                   "list the upstream page ids that make up the lesson")
            for topic in lesson.topics:
                owner = f"lesson {lesson.lesson_id}"
                if topic in topic_owner:
                    raise MappingError(file, f"{where}.topics",
                                       f"topic {topic!r} is in {topic_owner[topic]} and "
                                       f"{owner}", "a topic belongs to one lesson only")
                topic_owner[topic] = owner
            built.append(Lesson(lesson.lesson_id, course.course_id, lesson.topics,
                                lesson.is_required, lesson.duration_seconds))
        courses[course.course_id] = Course(course.course_id, course.upstream_id,
                                           course.completion, tuple(built))
        lessons.update((b.lesson_id, b) for b in built)
    return CourseMap(file, courses, lessons)
