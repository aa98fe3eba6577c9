"""The course map and the course-progress table fail at start-up naming file, key and fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from legacy_bridge.app import create_app
from legacy_bridge.coursemap import load_course_map
from legacy_bridge.errors import MappingError
from legacy_bridge.mapping import load_mappings
from legacy_bridge.progresstable import load_progress_table
from legacy_bridge.settings import Settings
from support import MAPPINGS


def folder(tmp_path: Path, name: str, old: str, new: str) -> Path:
    shutil.copytree(MAPPINGS, tmp_path / "tables")
    path = tmp_path / "tables" / name
    assert old in path.read_text(), old
    path.write_text(path.read_text().replace(old, new, 1))
    return tmp_path / "tables"


def test_the_shipped_course_map_loads() -> None:
    courses = load_course_map(MAPPINGS)
    assert courses is not None
    assert courses.lesson(42, 101) is not None and courses.lesson(42, 201) is None
    assert courses.lessons[101].topics == ("page_text_001", "page_video_002")


def test_the_course_map_is_never_read_as_a_route_table() -> None:
    assert {r.name for r in load_mappings(MAPPINGS)} == {"progress", "users",
                                                         "assessment-attempts"}


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ("course_id = 43", "course_id = 42", "courses.1.course_id", "one [[courses]] entry"),
    ("lesson_id = 201", "lesson_id = 101", "courses.1.lessons.0.lesson_id",
     "belongs to one course"),
    ('topics = ["page_quiz_003"]', "topics = []", "courses.0.lessons.1.topics",
     "list the upstream page ids"),
    ('topics = ["page_video_101"]', 'topics = ["page_text_001"]',
     "courses.1.lessons.0.topics", "one lesson only"),
    ("lesson_id = 103", 'lesson_id = "103"', "courses.0.lessons.2.lesson_id",
     "The course map"),
    ('completion = "upstream"', 'completion = "sometimes"', "courses.0.completion",
     "The course map"),
])
def test_a_bad_course_map_names_the_file_the_key_and_the_fix(
        tmp_path: Path, old: str, new: str, key: str, fix: str) -> None:
    with pytest.raises(MappingError) as caught:
        load_course_map(folder(tmp_path, "course-map.toml", old, new))
    error = caught.value
    assert error.file.endswith("course-map.toml") and error.key == key
    assert fix in error.fix


@pytest.mark.parametrize(("old", "new", "key"), [
    ('complete_mutation = "UpdateTopicAndCourseProgress"',
     'complete_mutation = "UpdateTopicProgress"', "course_progress.complete_mutation"),
    ('done_course_variable = "courseId"', 'done_course_variable = "course"',
     "course_progress.done_course_variable"),
    ('done_page_id = "id"', 'done_page_id = "pageId"', "course_progress.done_page_id"),
    ('"last_position", "completed_at"]', '"completed_at"]', "course_progress.record.keys"),
    ('methods = ["GET"]', 'methods = ["GET", "POST"]', "course_progress.routes.1.methods"),
    ('learner = "path"', 'learner = "caller"', "course_progress.routes.1.path"),
])
def test_a_bad_course_progress_table_names_the_key(
        tmp_path: Path, old: str, new: str, key: str) -> None:
    with pytest.raises(MappingError) as caught:
        load_progress_table(folder(tmp_path, "course-progress.toml", old, new))
    assert caught.value.key == key and caught.value.fix


def test_course_progress_without_a_course_map_refuses_to_start(tmp_path: Path) -> None:
    tables = folder(tmp_path, "course-map.toml", "[[courses]]", "[[courses]]")
    (tables / "course-map.toml").unlink()
    with pytest.raises(MappingError, match=r"no course-map\.toml beside it"):
        create_app(Settings(mappings_dir=tables, auth_mode="passthrough",
                            store_url=f"sqlite:///{tmp_path}/s.sqlite3"))
