"""Mapping tables load into routes, and every mistake fails at start-up with file, key, fix."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import respx
from click.testing import CliRunner
from graphql import build_schema, introspection_from_schema
from starlette.applications import Starlette

from legacy_bridge import schemas
from legacy_bridge.cli import main
from legacy_bridge.errors import MappingError
from legacy_bridge.mapping import load_mapping, load_mappings
from legacy_bridge.upstream import LiveSchemas
from support import MAPPINGS

PROGRESS = (MAPPINGS / "progress.toml").read_text()


def test_every_shipped_mapping_loads() -> None:
    routes = {route.name: route for route in load_mappings(MAPPINGS)}
    assert set(routes) == {"progress", "users", "assessment-attempts"}
    progress = routes["progress"]
    assert progress.connection.input_type == "ProgramProgressInput"
    assert progress.connection.node_type == "ProgramProgressRecord"
    assert [".".join(f.path) for f in progress.fields][:4] == [
        "learner_email", "program_key", "program_version", "stats.status"]
    assert "userId" in progress.node_fields  # read for the join, not shown


def test_check_command_accepts_the_shipped_tables() -> None:
    result = CliRunner().invoke(main, ["check", "--mappings-dir", str(MAPPINGS)])
    assert result.exit_code == 0
    # three routes, the Data API table, two course-progress routes and the course map
    assert result.output.count("ok  ") == 7


def broken(tmp_path: Path, old: str, new: str) -> MappingError:
    assert old in PROGRESS, old
    path = tmp_path / "progress.toml"
    path.write_text(PROGRESS.replace(old, new, 1))
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert caught.value.file == str(path)
    return caught.value


@pytest.mark.parametrize(("old", "new", "key", "fix"), [
    ('learner_email = "userEmail"', 'learner_email = "userMail"', "fields.learner_email",
     "userEmail"),
    ('"enrollmentStatus | lower"', '"enrollmentStatus | lowercase"', "fields.stats.status",
     "lower"),
    ('static_access = "STATIC_ACCESS"', 'static_access = "STATIC"',
     "params.status.values.static_access", "STATIC_ACCESS"),
    ('variable = "filter.enrollmentStatus"', 'variable = "filter.status"',
     "params.status.variable", "enrollmentStatus"),
    ('api = "program-progress"', 'api = "program-progres"', "route.api", "program-progress"),
    ('operation = "programProgress"', 'operation = "programs"', "route.operation",
     "programProgress"),
    ('default = "email"', 'default = "mail"', "params.sort.default", "email"),
    ('enrolled = "ENROLLED"', 'enroled = "ENROLLED"', "params.status.values.enroled",
     "'enrolled'"),
    ('unenrolled = "UNENROLLED"', 'unenrolled = "ENROLLED"', "params.status.values",
     "one-to-one"),
    ('type = "enum_list"', 'type = "enum"', "params.status.type", "enum_list"),
    ('"@assessments.completed"', '"@assessments.passed"',
     "fields.stats.assessment_completed", "aggregates"),
    ('where = { status = "PASSED" }', 'where = { status = "PASS" }',
     "joins.assessments.aggregates.completed.where.status", "PASSED"),
    ('batch = { variable = "filter.userIds"', 'batch = { variable = "filter.learningPlanId"',
     "joins.assessments.batch.variable", "list"),
    ('match = { userId = "userId"', 'match = { user = "userId"',
     "joins.assessments.match.user", "userId"),
    ('[params.per_page]\ntype = "per_page"', '[params.per_page]\ntype = "page"', "params",
     "exactly one page parameter"),
    ('from = "path"', 'from = "query"', "route.path", "from = \"path\""),
    ("max_first = 100", "max_firsts = 100", "route.max_firsts", "remove it"),
    ("[fields]", "[fields", "(syntax)", "TOML"),
])
def test_mistakes_name_the_file_the_key_and_the_fix(
        tmp_path: Path, old: str, new: str, key: str, fix: str) -> None:
    error = broken(tmp_path, old, new)
    assert error.key == key
    assert fix in error.fix or fix in error.problem
    assert str(error).startswith(f"{tmp_path / 'progress.toml'}: {key}: ")


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="no mapping tables"):
        load_mappings(tmp_path)


def test_two_tables_for_one_route_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(PROGRESS)
    (tmp_path / "b.toml").write_text(PROGRESS)
    with pytest.raises(MappingError, match="also mapped by"):
        load_mappings(tmp_path)


def test_check_command_fails_on_a_bad_table(tmp_path: Path) -> None:
    (tmp_path / "progress.toml").write_text(PROGRESS.replace('"userEmail"', '"email"'))
    result = CliRunner().invoke(main, ["check", "--mappings-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "fields.learner_email" in result.output and "fix:" in result.output


def test_serve_refuses_to_start_with_a_bad_table(tmp_path: Path) -> None:
    (tmp_path / "progress.toml").write_text(PROGRESS.replace("| lower", "| lowr"))
    result = CliRunner().invoke(main, ["serve", "--mappings-dir", str(tmp_path),
                                       "--auth-mode", "passthrough"])
    assert result.exit_code == 1
    assert "unknown transform 'lowr'" in result.output


def test_check_against_the_live_upstream_passes_when_the_schemas_agree(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str],
        learners_file: Path) -> None:
    base = serve_http(emulator_app)
    result = CliRunner().invoke(main, ["check", "--mappings-dir", str(MAPPINGS),
                                       "--upstream", base, "--api-key", "demo-company-key",
                                       "--learners-file", str(learners_file)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok  ") == 7
    assert "course-map.toml: 2 courses, 4 lessons (as the platform requires)" in result.output


@pytest.mark.parametrize(("old", "new", "says"), [
    ("lesson_id = 102\ntopics = [\"page_quiz_003\"]\nis_required = true",
     "lesson_id = 102\ntopics = [\"page_quiz_003\"]\nis_required = false",
     "courses.0.lessons.1: the platform requires topic 'page_quiz_003', but its lesson is "
     "not is_required - fix: set is_required = true"),
    ('topics = ["page_text_001", "page_video_002"]', 'topics = ["page_text_001"]',
     "requires topic 'page_video_002', which no lesson lists - fix: add it to its lesson"),
    ('upstream_id = "course_def456"', 'upstream_id = "course_nope"',
     "courses.1.upstream_id: the upstream knows no course 'course_nope'"),
])
def test_check_against_the_live_upstream_catches_a_course_map_the_platform_disagrees_with(
        emulator_app: Starlette, serve_http: Callable[[Starlette], str], tmp_path: Path,
        learners_file: Path, old: str, new: str, says: str) -> None:
    shutil.copytree(MAPPINGS, tmp_path / "tables")
    course_map = tmp_path / "tables" / "course-map.toml"
    assert old in course_map.read_text()
    course_map.write_text(course_map.read_text().replace(old, new))
    result = CliRunner().invoke(main, ["check", "--mappings-dir", str(tmp_path / "tables"),
                                       "--upstream", serve_http(emulator_app), "--api-key",
                                       "demo-company-key", "--learners-file",
                                       str(learners_file)])
    assert result.exit_code == 1
    assert says in result.output


def test_check_against_the_live_upstream_catches_schema_drift() -> None:
    drifted = build_schema(schemas.sdl("learning-plan-progress").replace(
        "stepsCompleted: Int!", "stepsDone: Int!"))

    def introspect(request: httpx.Request) -> httpx.Response:
        api = request.url.path.split("/")[-2]
        schema = drifted if api == "learning-plan-progress" else schemas.schema(api)
        return httpx.Response(200, json={"data": introspection_from_schema(schema)})

    with respx.mock(base_url="http://live") as mock:
        mock.post().mock(side_effect=introspect)
        with pytest.raises(MappingError) as caught, LiveSchemas("http://live", "k") as live:
            load_mappings(MAPPINGS, live)
    assert caught.value.file.endswith("users.toml")
    assert caught.value.key == "fields.stats.steps_completed"
    assert "stepsDone" in caught.value.fix


def test_check_against_an_unreachable_upstream_names_the_endpoint() -> None:
    with respx.mock(base_url="http://live") as mock:
        mock.post().respond(401)
        with pytest.raises(MappingError, match="answered HTTP 401") as caught, \
                LiveSchemas("http://live", "bad") as live:
            load_mappings(MAPPINGS, live)
    assert caught.value.key == "route.endpoint"


def test_check_json_lists_every_table_checked() -> None:
    result = CliRunner().invoke(main, ["check", "--mappings-dir", str(MAPPINGS), "--json"])
    body = json.loads(result.output)
    assert result.exit_code == 0 and body["ok"] is True and body["problems"] == []
    assert len(body["tables"]) == 7
    assert any("course-map.toml" in t["file"] for t in body["tables"])


def test_check_json_names_a_problem_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "progress.toml").write_text(PROGRESS.replace('"userEmail"', '"email"'))
    result = CliRunner().invoke(main, ["check", "--mappings-dir", str(tmp_path), "--json"])
    body = json.loads(result.stdout)
    assert result.exit_code == 1 and body["ok"] is False
    assert "fields.learner_email" in body["problems"][0]


def test_check_against_an_upstream_that_does_not_answer_exits_2() -> None:
    result = CliRunner().invoke(main, ["check", "--mappings-dir", str(MAPPINGS),
                                       "--upstream", "http://127.0.0.1:9", "--api-key", "k"])
    assert result.exit_code == 2
    assert "could not check" in result.output
