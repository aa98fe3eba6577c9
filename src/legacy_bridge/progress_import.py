"""`legacy-bridge progress import FILE.csv`: the legacy progress table, loaded once at cut-over.

The CSV is the legacy table's export with a header row naming at least
`user_id, course_id, lesson_id, completed, video_progress, last_position,
completed_at` (other columns are ignored). Each row becomes a store row,
unless the store already holds that (learner, lesson): an import never
overwrites positions the proxy saved since; a completion the proxy only
observed takes the file's time (the old API knew when it happened).
Completed lessons are then forwarded upstream as the learner (one read per
learner and course, one mutation per topic not yet done), so the platform
knows what the legacy API knew.

Resumable: rows are committed in batches together with the line reached,
keyed by the file's SHA-256; running the same file again continues after the
last committed line (`restart=True` starts over, which is safe: rows present
are kept and completions already upstream are not sent again).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from legacy_bridge.auth import Learners
from legacy_bridge.coursemap import CourseMap, Lesson
from legacy_bridge.errors import BridgeError
from legacy_bridge.progress import Learner, Progress
from legacy_bridge.progressrows import LessonRow
from legacy_bridge.store import Store

COLUMNS = ("user_id", "course_id", "lesson_id", "completed", "video_progress",
           "last_position", "completed_at")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}$")
TRUE, FALSE = {"true", "t", "1", "yes"}, {"false", "f", "0", "no", ""}
BATCH = 500


class ImportFileError(ValueError):
    """The file cannot be imported at all (not CSV, columns missing)."""


@dataclass
class Summary:
    rows: int = 0  # data rows read this run (after a resume point)
    resumed_after: int = 0  # the line a previous run had committed
    added: int = 0
    present: int = 0  # the store already held that (learner, lesson)
    corrected: int = 0  # completions the proxy only saw: the old API's time taken
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, why): no values
    topics_sent: int = 0
    not_forwarded: int = 0  # completed lessons of learners without a platform identity
    forward_failures: int = 0

    def lines(self) -> list[str]:
        out = [f"rows read            {self.rows}"
               + (f" (resumed after line {self.resumed_after})" if self.resumed_after else ""),
               f"added to the store   {self.added}",
               f"already in the store {self.present}"
               + (f" ({self.corrected} completion times taken from the file)"
                  if self.corrected else ""),
               f"skipped              {len(self.skipped)}",
               f"topics completed upstream {self.topics_sent}"]
        if self.not_forwarded:
            out.append(f"completions not forwarded (learner not in BRIDGE_LEARNERS_FILE) "
                       f"{self.not_forwarded}")
        if self.forward_failures:
            out.append(f"completions that failed upstream (run again) {self.forward_failures}")
        out += [f"  line {line}: {why}" for line, why in self.skipped[:20]]
        if len(self.skipped) > 20:
            out.append(f"  ... and {len(self.skipped) - 20} more")
        return out

    @property
    def clean(self) -> bool:
        return not (self.skipped or self.not_forwarded or self.forward_failures)


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _number(text: str) -> str | None:
    """A position as the JSON number the legacy table held, or None if it is not one."""
    text = text.strip() or "0"
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return orjson.dumps(value).decode()


def _instant(text: str) -> str | None:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the legacy column held UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_row(raw: dict[str, str], courses: CourseMap, now: str
              ) -> tuple[LessonRow, Lesson] | str:
    """A store row and its lesson, or why the row is skipped (never a value of it)."""
    user = raw["user_id"].strip()
    if not UUID.fullmatch(user):
        return "user_id is not a UUID"
    try:
        course_id, lesson_id = int(raw["course_id"]), int(raw["lesson_id"])
    except ValueError:
        return "course_id and lesson_id must be integers"
    lesson = courses.lesson(course_id, lesson_id)
    if lesson is None:
        return "the lesson is not in that course of the course map"
    flag = raw["completed"].strip().lower()
    if flag not in TRUE | FALSE:
        return "completed is not a boolean"
    completed = flag in TRUE
    video, position = _number(raw["video_progress"]), _number(raw["last_position"])
    if video is None or position is None:
        return "a position is not a number of seconds"
    completed_at = None
    if completed:
        completed_at = _instant(raw["completed_at"]) if raw["completed_at"].strip() else now
        if completed_at is None:
            return "completed_at is not a timestamp"
    return LessonRow(user.lower(), lesson_id, course_id, completed, video, position,
                     completed_at, None, now), lesson


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ImportFileError(f"{path}: the header row lacks {', '.join(missing)} "
                                  f"(needs {', '.join(COLUMNS)})")
        for raw in reader:
            yield reader.line_num, {c: raw.get(c) or "" for c in COLUMNS}


def count_rows(path: Path) -> int:
    """Data rows in the file (for the progress bar)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(0, sum(1 for record in csv.reader(handle) if record) - 1)


async def run_import(path: Path, store: Store, courses: CourseMap, progress: Progress | None,
                     learners: Learners, restart: bool = False,
                     advance: Callable[[int], None] = lambda n: None) -> Summary:
    """Load the file into the store and forward its completions (`progress` None: store
    only), a batch at a time; a batch's line is committed after its completions went out,
    so a run stopped half-way and resumed forwards nothing twice and misses nothing."""
    digest = file_digest(path)
    summary = Summary(resumed_after=0 if restart else store.import_checkpoint(digest))
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    batch: list[tuple[LessonRow, Lesson]] = []
    line = summary.resumed_after

    async def commit() -> None:
        added, corrected = store.insert_lessons([row for row, _ in batch])
        summary.added += added
        summary.present += len(batch) - added
        summary.corrected += corrected
        if progress is not None:
            await _forward(batch, progress, courses, learners, summary)
        store.set_import_checkpoint(digest, line)
        advance(len(batch))
        batch.clear()

    for line, raw in _rows(path):
        if line <= summary.resumed_after:
            continue
        summary.rows += 1
        parsed = parse_row(raw, courses, now)
        if isinstance(parsed, str):
            summary.skipped.append((line, parsed))
            advance(1)
            continue
        batch.append(parsed)
        if len(batch) >= BATCH:
            await commit()
    await commit()
    return summary


async def _forward(batch: list[tuple[LessonRow, Lesson]], progress: Progress,
                   courses: CourseMap, learners: Learners, summary: Summary) -> None:
    """Each learner's completed lessons, per course: one read, the missing topics."""
    completed: dict[tuple[str, int], list[Lesson]] = defaultdict(list)
    for row, lesson in batch:
        if row.completed:
            completed[(row.user_id, lesson.course_id)].append(lesson)
    for (user, course_id), lessons in sorted(completed.items()):
        token = learners.auth_token(user)
        if token is None:
            summary.not_forwarded += len(lessons)
            continue
        course = courses.courses[course_id]
        in_map_order = sorted(set(lessons), key=course.lessons.index)
        try:
            summary.topics_sent += await progress.complete(Learner(user, token), course,
                                                           in_map_order)
        except BridgeError:  # counted; `--restart` later retries it safely
            summary.forward_failures += len(lessons)
