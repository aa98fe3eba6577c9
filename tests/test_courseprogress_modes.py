"""Course progress beside the old API: the emulator's legacy course-progress API, the
migration modes, and shadow comparison of reads (writes go to one side only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from legacy_bridge.auth import load_learners
from legacy_bridge.coursemap import load_course_map
from legacy_bridge.emulator.app import DEMO_ADMIN_TOKEN, DEMO_LEARNER2_TOKEN, DEMO_LEARNER_TOKEN
from legacy_bridge.emulator.learning_path import ANA, BEN
from legacy_bridge.emulator.legacy_progress import BEN_FINISHED
from legacy_bridge.progress_import import COLUMNS, run_import
from support import MAPPINGS

AS_ANA = {"Authorization": f"Bearer {DEMO_LEARNER_TOKEN}"}
AS_BEN = {"Authorization": f"Bearer {DEMO_LEARNER2_TOKEN}"}


def client_for(app: Starlette, base: str = "http://proxy") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


@pytest.fixture
async def old_api(emulator_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(emulator_app, "http://upstream") as client:
        yield client


# -- the reference: the legacy API as the contract describes it ------------------------

async def test_the_old_api_reads_bens_finished_lesson(old_api: httpx.AsyncClient) -> None:
    answer = await old_api.get("/api/progress?courseId=42", headers=AS_BEN)
    assert answer.json() == [{"user_id": BEN, "course_id": 42, "lesson_id": 101,
                              "completed": True, "video_progress": 0, "last_position": 0,
                              "completed_at": BEN_FINISHED}]


async def test_the_old_api_reverts_a_completion_literally(old_api: httpx.AsyncClient) -> None:
    """Where the proxy keeps it (gap G5): the reason writes are not compared."""
    await old_api.post("/api/progress", headers=AS_ANA,
                       json={"course_id": 42, "lesson_id": 102, "completed": True})
    answer = await old_api.post("/api/progress", headers=AS_ANA,
                                json={"course_id": 42, "lesson_id": 102, "completed": False})
    assert (answer.json()["completed"], answer.json()["completed_at"]) == (False, None)


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "code"), [
    ("GET", "/api/progress", {}, None, 401, "unauthorized"),
    ("GET", "/api/progress?courseId=x", AS_ANA, None, 400, "invalid_parameter"),
    ("POST", "/api/progress", AS_ANA, b"nope", 400, "invalid_body"),
    ("POST", "/api/progress", AS_ANA, b'{"course_id": 42}', 400, "missing_field"),
    ("POST", "/api/progress", AS_ANA, b'{"course_id": 42, "lesson_id": 201}', 400,
     "unknown_lesson"),
    ("GET", f"/api/admin/progress/{BEN}", AS_ANA, None, 403, "forbidden"),
    ("DELETE", "/api/progress", AS_ANA, None, 405, "method_not_allowed"),
])
async def test_the_old_api_refuses_as_the_contract_says(
        old_api: httpx.AsyncClient, method: str, path: str, headers: dict[str, str],
        body: bytes | None, status: int, code: str) -> None:
    answer = await old_api.request(method, path, headers=headers, content=body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


# -- modes ------------------------------------------------------------------------------

async def test_legacy_mode_relays_reads_and_writes_to_the_old_api(
        make_proxy: Callable[..., Starlette], old_api: httpx.AsyncClient,
        emulator_app: Starlette) -> None:
    app = make_proxy(mode="legacy", legacy_url="http://upstream")
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        saved = await proxy.put("/api/progress", headers=AS_ANA,
                                json={"course_id": 42, "lesson_id": 103, "video_progress": 7})
        read = await proxy.get("/api/admin/progress/" + ANA,
                               headers={"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"})
    assert saved.status_code == 200 and saved.json()["video_progress"] == 7
    assert read.json() == (await old_api.get("/api/progress", headers=AS_ANA)).json()
    assert emulator_app.state.controls.counts["learning-path"] == 0  # the platform untouched


async def test_legacy_mode_checks_the_learner_id_before_relaying(
        make_proxy: Callable[..., Starlette]) -> None:
    app = make_proxy(mode="legacy", legacy_url="http://upstream")
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        answer = await proxy.get("/api/admin/progress/%2E%2E",
                                 headers={"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"})
    assert answer.status_code == 400


async def test_shadow_compares_reads_and_the_import_closes_the_completion_time_gap(
        make_proxy: Callable[..., Starlette], old_api: httpx.AsyncClient,
        tmp_path: Path, learners_file: Path) -> None:
    """Before the import the proxy's time of Ben's completion is when it first saw it
    (gap G4); after importing the old table it is the old API's, and the sides agree."""
    app = make_proxy(mode="shadow", legacy_url="http://upstream")
    bridge = app.state.bridge
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        first = await proxy.get("/api/progress?courseId=42", headers=AS_BEN)
        await bridge.shadow.queue.join()
        export = tmp_path / "legacy.csv"
        export.write_text(",".join(COLUMNS) + "\n" + "".join(
            ",".join(json.dumps(r[c]).strip('"') if r[c] is not None else "" for c in COLUMNS)
            + "\n" for r in (await old_api.get("/api/progress", headers=AS_BEN)).json()))
        courses = load_course_map(MAPPINGS)
        assert courses is not None
        store = bridge.usage.store
        summary = await run_import(export, store, courses, None, load_learners(learners_file))
        # the proxy had seen Ben's completion already: the file's time replaces its own
        assert (summary.present, summary.corrected) == (1, 1)
        await proxy.get("/api/progress?courseId=42", headers=AS_BEN)
        await bridge.shadow.queue.join()
        rows = store.comparisons()
    assert first.json()[0]["completed_at"] == BEN_FINISHED  # the client got the old API's
    assert [r.agrees for r in rows] == [False, True]
    differences = json.loads(rows[0].differences)
    assert [d["path"] for d in differences] == ["completed_at"]
    assert BEN not in rows[0].differences  # identities are hashed


async def test_shadow_sends_a_write_to_the_primary_side_only(
        make_proxy: Callable[..., Starlette], old_api: httpx.AsyncClient,
        emulator_app: Starlette) -> None:
    app = make_proxy(mode="shadow", legacy_url="http://upstream")
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        await proxy.post("/api/progress", headers=AS_ANA,
                         json={"course_id": 42, "lesson_id": 101, "completed": True})
        await app.state.bridge.shadow.queue.join()
        compared = app.state.bridge.usage.store.comparisons()
    assert compared == []
    assert emulator_app.state.controls.counts["learning-path"] == 0
    assert (await old_api.get("/api/progress", headers=AS_ANA)).json()[0]["completed"] is True


async def test_the_table_mode_overrides_bridge_mode_for_course_progress_only(
        make_proxy: Callable[..., Starlette], tmp_path: Path, emulator_app: Starlette) -> None:
    import shutil
    shutil.copytree(MAPPINGS, tmp_path / "tables")
    table = tmp_path / "tables" / "course-progress.toml"
    table.write_text(table.read_text().replace(
        'api = "learning-path"', 'api = "learning-path"\nmode = "legacy"', 1))
    app = make_proxy(mappings_dir=tmp_path / "tables", legacy_url="http://upstream")
    async with app.router.lifespan_context(app), client_for(app) as proxy:
        answer = await proxy.get("/api/progress?courseId=42", headers=AS_BEN)
    assert answer.json()[0]["completed_at"] == BEN_FINISHED  # the old API answered
    assert emulator_app.state.controls.counts["learning-path"] == 0


# -- compare progress: the crawl of course progress ------------------------------------

def test_compare_progress_differs_on_observed_times_until_the_import(
        make_proxy: Callable[..., Starlette], emulator_app: Starlette,
        serve_http: Callable[[Starlette], str], tmp_path: Path, learners_file: Path) -> None:
    upstream = serve_http(emulator_app)
    store = tmp_path / "bridge.sqlite3"
    bridge = serve_http(make_proxy(over_http=True, upstream_url=upstream,
                                   store_url=f"sqlite:///{store}"))
    env = {**os.environ, "BRIDGE_COMPARE_LEGACY_TOKEN": DEMO_ADMIN_TOKEN,
           "BRIDGE_COMPARE_BRIDGE_TOKEN": DEMO_ADMIN_TOKEN,
           "BRIDGE_LEARNERS_FILE": str(learners_file), "BRIDGE_MAPPINGS_DIR": str(MAPPINGS),
           "BRIDGE_STORE_URL": f"sqlite:///{store}"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "legacy_bridge", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    before = run("compare", "progress", "--legacy-url", upstream, "--bridge-url", bridge)
    assert before.returncode == 1, before.stderr
    assert "completed_at" in before.stdout and BEN not in before.stdout  # hashed
    export = tmp_path / "legacy.csv"
    export.write_text(",".join(COLUMNS) + f"\n{BEN},42,101,true,0,0,{BEN_FINISHED}\n")
    assert run("progress", "import", str(export), "--no-forward").returncode == 0
    after = run("compare", "progress", "--legacy-url", upstream, "--bridge-url", bridge,
                "--json")
    assert after.returncode == 0, after.stdout
    assert json.loads(after.stdout)[0]["compared"] == 1
