"""GraphQL nodes become legacy items in the table's key order."""

from __future__ import annotations

from legacy_bridge.mapping import load_mappings
from legacy_bridge.rewrite import compile_rewriter
from support import MAPPINGS

ROUTES = {route.name: route for route in load_mappings(MAPPINGS)}
NODE = {"userEmail": "a@x.example", "programKey": "nd1", "programVersion": "1.0.0",
        "enrollmentStatus": "STATIC_ACCESS", "projectsRequiredTotal": 2,
        "projectsRequiredCompleted": 1, "completionPercentage": 50, "lastActiveAt": None,
        "enrolledAt": "2025-01-01T00:00:00Z", "graduatedAt": None, "userId": "u"}
JOINED = {("assessments", "attempted"): 3, ("assessments", "completed"): 2}


def test_nested_keys_keep_the_table_order() -> None:
    item = compile_rewriter(ROUTES["progress"]).item(NODE, JOINED)
    assert list(item) == ["learner_email", "program_key", "program_version", "stats",
                          "last_seen", "enrolled_at"]
    assert list(item["stats"]) == ["status", "total_projects", "total_projects_completed",
                                   "perc_concepts_completed", "assessment_attempted",
                                   "assessment_completed"]


def test_enum_is_lower_cased_and_float_written_as_float() -> None:
    stats = compile_rewriter(ROUTES["progress"]).item(NODE, JOINED)["stats"]
    assert stats["status"] == "static_access"
    assert stats["perc_concepts_completed"] == 50.0
    assert isinstance(stats["perc_concepts_completed"], float)


def test_null_is_kept_unless_the_table_says_omit() -> None:
    item = compile_rewriter(ROUTES["progress"]).item(NODE, JOINED)
    assert item["last_seen"] is None
    assert "graduated_at" not in item
    graduated = compile_rewriter(ROUTES["progress"]).item(
        {**NODE, "graduatedAt": "2026-01-01T00:00:00Z"}, JOINED)
    assert list(graduated)[-1] == "graduated_at"


def test_values_pass_through_unchanged() -> None:
    item = compile_rewriter(ROUTES["progress"]).item(
        {**NODE, "enrolledAt": "2025-01-01T00:00:00.123+00:00"}, JOINED)
    assert item["enrolled_at"] == "2025-01-01T00:00:00.123+00:00"


def test_joined_values_land_in_their_keys() -> None:
    stats = compile_rewriter(ROUTES["progress"]).item(NODE, JOINED)["stats"]
    assert (stats["assessment_attempted"], stats["assessment_completed"]) == (3, 2)
