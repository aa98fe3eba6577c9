"""`legacy-bridge progress import`: the legacy table loaded once, completions forwarded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge import progress_import
from legacy_bridge.auth import load_learners
from legacy_bridge.coursemap import load_course_map
from legacy_bridge.emulator.app import DEMO_API_KEY, DEMO_LEARNER_TOKEN
from legacy_bridge.emulator.learning_path import ANA, BEN
from legacy_bridge.progress import Progress
from legacy_bridge.progress_import import run_import
from legacy_bridge.progresstable import load_progress_table
from legacy_bridge.store import Store
from legacy_bridge.upstream import Policy, Upstream
from support import MAPPINGS

STRANGER = "0b6c1a52-5d8e-4f3a-9c1e-7a2b4c6d8e77"  # in the legacy table, not a platform learner
HEADER = "id,user_id,course_id,lesson_id,completed,video_progress,last_position,completed_at\n"
ROWS = [
    f"1,{ANA},42,101,true,600,600,2024-05-01T08:00:00Z",
    f"2,{ANA},42,103,false,12.5,12,",
    f"3,{BEN},42,102,t,30,30,2024-05-02 09:30:00",
    "4,not-a-uuid,42,101,false,0,0,",
    f"5,{ANA},42,201,false,0,0,",
    f"6,{STRANGER},43,201,true,0,0,2024-05-03T00:00:00Z",
]


class Parts:
    def __init__(self, emulator: Starlette, store_path: Path, learners_file: Path) -> None:
        self.store_path = store_path
        self.store = Store(f"sqlite:///{store_path}")
        self.upstream = Upstream("http://upstream", Policy(backoff=0),
                                 httpx.ASGITransport(app=emulator))
        table, courses = load_progress_table(MAPPINGS), load_course_map(MAPPINGS)
        assert table is not None and courses is not None
        self.courses = courses
        self.progress = Progress(table, courses, self.store, self.upstream, DEMO_API_KEY,
                                 300, 50)
        self.learners = load_learners(learners_file)
        self.log = emulator.state.controls.log

    async def run(self, path: Path, **options: object) -> progress_import.Summary:
        return await run_import(path, self.store, self.courses, self.progress, self.learners,
                                **options)  # type: ignore[arg-type]


@pytest.fixture
async def parts(emulator_app: Starlette, tmp_path: Path, learners_file: Path
                ) -> AsyncIterator[Parts]:
    built = Parts(emulator_app, tmp_path / "store.sqlite3", learners_file)
    yield built
    await built.upstream.aclose()
    await built.store.aclose()


async def test_an_import_loads_rows_skips_bad_ones_and_forwards_completions(
        parts: Parts) -> None:
    summary = await parts.run(_write(parts, ROWS))
    assert (summary.rows, summary.added, summary.present) == (6, 4, 0)
    assert summary.skipped == [(5, "user_id is not a UUID"),
                               (6, "the lesson is not in that course of the course map")]
    assert summary.not_forwarded == 1  # the stranger's completion: no platform identity
    # Ana's lesson 101: one read, its two topics; Ben's 102: one read, its one topic
    sent = [(r["operationName"], r["auth_user"]) for r in parts.log]
    assert sent == [("PagesCompletedByCourse", ANA), ("UpdateTopicAndCourseProgress", ANA),
                    ("UpdateTopicAndCourseProgress", ANA),
                    ("PagesCompletedByCourse", BEN), ("UpdateTopicAndCourseProgress", BEN)]
    assert summary.topics_sent == 3
    rows = {r.lesson_id: r for r in parts.store.lessons(ANA, 42)}
    assert rows[101].completed_at == "2024-05-01T08:00:00.000Z"
    assert (rows[103].video_progress, rows[103].last_position) == ("12.5", "12")
    assert parts.store.lessons(BEN, 42)[0].completed_at == "2024-05-02T09:30:00.000Z"


async def test_running_the_same_file_again_resumes_after_its_last_line(parts: Parts) -> None:
    path = _write(parts, ROWS)
    await parts.run(path)
    parts.log.clear()
    again = await parts.run(path)
    assert (again.resumed_after, again.rows, again.added) == (7, 0, 0)
    assert list(parts.log) == []


async def test_a_restart_keeps_present_rows_and_sends_no_completion_twice(
        parts: Parts) -> None:
    path = _write(parts, ROWS)
    await parts.run(path)
    parts.log.clear()
    again = await parts.run(path, restart=True)
    assert (again.added, again.present) == (0, 4)
    assert [r["operationName"] for r in parts.log] == ["PagesCompletedByCourse"] * 2


async def test_an_import_stopped_half_way_continues_where_it_stopped(
        parts: Parts, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_import, "BATCH", 2)
    path = _write(parts, ROWS)

    def stop_after_first_batch(count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await parts.run(path, advance=stop_after_first_batch)
    resumed = await parts.run(path)
    assert resumed.resumed_after == 3  # the header and the first batch of two
    assert len(parts.store.lessons(ANA, 42)) + len(parts.store.lessons(BEN, 42)) == 3


async def test_an_import_never_overwrites_what_the_proxy_wrote_since(
        parts: Parts, make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(store_url=f"sqlite:///{parts.store_path}")
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        await proxy.post("/api/progress", headers={"Authorization": f"Bearer "
                                                   f"{DEMO_LEARNER_TOKEN}"},
                         json={"course_id": 42, "lesson_id": 103, "video_progress": 99})
        summary = await parts.run(_write(parts, ROWS[1:2]))
        assert (summary.added, summary.present) == (0, 1)
        records = (await proxy.get("/api/progress?courseId=42", headers={
            "Authorization": f"Bearer {DEMO_LEARNER_TOKEN}"})).json()
    assert [r["video_progress"] for r in records] == [99]


def _write(parts: Parts, rows: list[str]) -> Path:
    path = parts.store_path.parent / f"export-{len(rows)}-{abs(hash(tuple(rows)))}.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(("content", "status", "says"), [
    (HEADER + ROWS[1] + "\n", 0, "added to the store   1"),
    (HEADER + ROWS[3] + "\n", 1, "line 2: user_id is not a UUID"),
    ("user_id,course_id\n", 2, "lacks lesson_id"),
])
def test_the_command_exits_0_clean_1_partial_2_could_not_run(
        tmp_path: Path, content: str, status: int, says: str) -> None:
    path = tmp_path / "export.csv"
    path.write_text(content)
    env = {**os.environ, "BRIDGE_STORE_URL": f"sqlite:///{tmp_path}/s.sqlite3",
           "BRIDGE_MAPPINGS_DIR": str(MAPPINGS)}
    result = subprocess.run([sys.executable, "-m", "legacy_bridge", "progress", "import",
                             str(path), "--no-forward"], env=env, capture_output=True,
                            text=True)
    assert result.returncode == status, result.stderr
    assert says in result.stdout + result.stderr


async def test_a_completion_the_proxy_made_keeps_its_own_time(
        parts: Parts, make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(store_url=f"sqlite:///{parts.store_path}")
    auth = {"Authorization": f"Bearer {DEMO_LEARNER_TOKEN}"}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://proxy") as proxy:
        made = (await proxy.post("/api/progress", headers=auth, json={
            "course_id": 42, "lesson_id": 101, "completed": True})).json()["completed_at"]
        summary = await parts.run(_write(parts, ROWS[:1]))  # the file says 2024-05-01
        assert (summary.present, summary.corrected) == (1, 0)
        records = (await proxy.get("/api/progress?courseId=42", headers=auth)).json()
    assert records[0]["completed_at"] == made
