"""`compare replay`: recorded legacy calls (HAR, JSON lines) replayed against the proxy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from starlette.applications import Starlette

from legacy_bridge.cli import main
from legacy_bridge.emulator.app import DEMO_COMPANY_TOKEN, DEMO_LEARNER2_TOKEN
from legacy_bridge.emulator.dataset import DEMO_PLAN_ID
from support import MAPPINGS

Serve = Callable[[Starlette], str]
RECORDED_SECRET = "recorded-client-token-never-replayed"
USERS = f"/api/v2/plans/{DEMO_PLAN_ID}/users"


def record(upstream: str) -> list[dict[str, Any]]:
    """What an access-log export of the old API gives: method, path, query, status, body."""
    calls = [("GET", USERS, "per_page=5&page=2", None, DEMO_COMPANY_TOKEN),
             ("GET", f"/api/v2/plans/{DEMO_PLAN_ID}/progress", "per_page=3", None,
              DEMO_COMPANY_TOKEN),
             ("GET", USERS, "per_page=oops", None, DEMO_COMPANY_TOKEN),  # a 400, recorded
             ("POST", "/api/emc/reports/query", "",
              '{"query": "SELECT COUNT(*) FROM roster_v1"}', DEMO_COMPANY_TOKEN),
             ("GET", "/api/progress", "courseId=42", None, DEMO_LEARNER2_TOKEN)]
    rows = []
    for method, path, query, body, token in calls:
        answer = httpx.request(method, f"{upstream}{path}?{query}", content=body,
                               headers={"Authorization": f"Bearer {token}",
                                        "Content-Type": "application/json"})
        rows.append({"method": method, "path": path, "query": query, "status":
                     answer.status_code, "body": answer.text,
                     **({"request_body": body} if body else {})})
    rows.append({"method": "POST", "path": "/api/progress", "query": "", "status": 200,
                 "request_body": '{"course_id": 42, "lesson_id": 101}', "body": "{}"})
    return rows


def har(rows: list[dict[str, Any]], base: str) -> dict[str, Any]:
    return {"log": {"version": "1.2", "entries": [{
        "request": {"method": r["method"],
                    "url": f"{base}{r['path']}" + (f"?{r['query']}" if r["query"] else ""),
                    "headers": [{"name": "Authorization", "value": f"Bearer {RECORDED_SECRET}"}],
                    **({"postData": {"mimeType": "application/json",
                                     "text": r["request_body"]}} if "request_body" in r
                       else {})},
        "response": {"status": r["status"], "content": {"mimeType": "application/json",
                                                        "text": r["body"]}}}
        for r in rows]}}


def run(recording: Path, bridge: str, token: str = DEMO_COMPANY_TOKEN, *extra: str) -> Result:
    return CliRunner().invoke(main, ["compare", "replay", str(recording), "--bridge-url", bridge,
                                     "--mappings-dir", str(MAPPINGS), "--json", *extra],
                              env={"BRIDGE_COMPARE_BRIDGE_TOKEN": token})


@pytest.fixture
def sides(make_emulator: Callable[..., Starlette], make_proxy: Callable[..., Starlette],
          serve_http: Serve) -> tuple[str, str]:
    upstream = serve_http(make_emulator())
    return upstream, serve_http(make_proxy(over_http=True, upstream_url=upstream))


def test_json_lines_replay_agrees_and_skips_the_write(
        sides: tuple[str, str], tmp_path: Path) -> None:
    upstream, bridge = sides
    rows = [r for r in record(upstream) if r["path"] != "/api/progress" or r["method"] == "POST"]
    recording = tmp_path / "calls.jsonl"
    recording.write_text("\n".join(json.dumps(r) for r in rows))
    result = run(recording, bridge)
    body = json.loads(result.output)
    assert result.exit_code == 0, result.output
    assert {r["route"]: (r["calls"], r["agree"]) for r in body["routes"]} == {
        "users": (2, 2), "progress": (1, 1), "data-api": (1, 1)}
    assert body["skipped"] == {"a write (never replayed)": 1}


def test_a_har_recording_replays_without_its_own_credentials(
        sides: tuple[str, str], tmp_path: Path) -> None:
    upstream, bridge = sides
    rows = [r for r in record(upstream) if r["path"] != "/api/progress"]
    recording = tmp_path / "traffic.har"
    recording.write_text(json.dumps(har(rows, "https://old.example.com")))
    result = run(recording, bridge)
    assert result.exit_code == 0, result.output
    assert RECORDED_SECRET not in result.output
    assert json.loads(result.output)["agrees"] is True


def test_a_recorded_answer_that_now_differs_is_named_and_exits_1(
        sides: tuple[str, str], tmp_path: Path) -> None:
    upstream, bridge = sides
    rows = record(upstream)[:1]
    answer = json.loads(rows[0]["body"])
    answer["results"][0]["last_seen"] = "1999-01-01T00:00:00Z"  # the old API said otherwise
    rows[0]["body"] = json.dumps(answer)
    recording = tmp_path / "calls.jsonl"
    recording.write_text(json.dumps(rows[0]))
    result = run(recording, bridge)
    users = json.loads(result.output)["routes"][0]
    assert result.exit_code == 1
    assert users["fields"] == {"last_seen": 1} and users["agree"] == 0
    assert users["examples"][0]["call"] == 1


def test_course_progress_reads_replay_by_user_and_lesson(
        sides: tuple[str, str], tmp_path: Path, learners_file: Path) -> None:
    upstream, bridge = sides
    rows = [r for r in record(upstream) if r["path"] == "/api/progress"
            and r["method"] == "GET"]
    recording = tmp_path / "calls.jsonl"
    recording.write_text(json.dumps(rows[0]))
    result = run(recording, bridge, DEMO_LEARNER2_TOKEN)
    progress = json.loads(result.output)["routes"][0]
    # the proxy's completion time is when it first saw Ben's (no import here): a difference
    assert result.exit_code == 1 and progress["fields"] == {"completed_at": 1}


@pytest.mark.parametrize("content", ["not json at all", '{"log": {"entries": [{}]}}'])
def test_an_unreadable_recording_exits_2(
        sides: tuple[str, str], tmp_path: Path, content: str) -> None:
    recording = tmp_path / "broken"
    recording.write_text(content)
    result = run(recording, sides[1])
    assert result.exit_code == 2 and "could not compare" in result.output
