"""The generated dataset is deterministic and as varied as real plans are."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from legacy_bridge.emulator.dataset import (
    DEMO_PLAN_ID,
    DatasetSpec,
    empty_plan_id,
    generate,
    plan_ids,
)
from support import SPEC

NULLABLE = {
    "program_progress": ["plan_id", "unenrolled_at", "graduated_at", "completed_at",
                         "last_active_at"],
    "learning_plan_progress": ["unsubscribed_at", "completed_at", "last_active_at"],
    "assessment_attempts": ["program_key", "score", "submitted_at", "graded_at"],
}


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    spec = DatasetSpec(seed=3, learners=50, plans=2)
    a = generate(spec, tmp_path / "a.sqlite3")
    b = generate(spec, tmp_path / "b.sqlite3")
    for table in NULLABLE:
        assert _rows(a, f"SELECT * FROM {table}") == _rows(b, f"SELECT * FROM {table}")


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    a = generate(DatasetSpec(seed=3, learners=50), tmp_path / "a.sqlite3")
    b = generate(DatasetSpec(seed=4, learners=50), tmp_path / "b.sqlite3")
    sql = "SELECT user_email FROM program_progress"
    assert _rows(a, sql) != _rows(b, sql)


def test_every_nullable_field_has_nulls_and_values(dataset: Path) -> None:
    for table, columns in NULLABLE.items():
        for column in columns:
            nulls, values = _rows(dataset, f"SELECT SUM({column} IS NULL), "
                                           f"SUM({column} IS NOT NULL) FROM {table}")[0]
            assert nulls and values, f"{table}.{column}"


def test_learners_hold_one_to_three_programs_per_plan(dataset: Path) -> None:
    counts = {n for (n,) in _rows(dataset, "SELECT COUNT(*) FROM program_progress "
                                           "WHERE plan_id IS NOT NULL "
                                           "GROUP BY user_id, plan_id")}
    assert counts == {1, 2, 3}


def test_emails_repeat_across_records_and_sort_keys_tie(dataset: Path) -> None:
    ((repeated,),) = _rows(dataset, "SELECT COUNT(*) FROM (SELECT user_email FROM "
                                    "program_progress GROUP BY user_email HAVING COUNT(*) > 1)")
    ((tied,),) = _rows(dataset, "SELECT COUNT(*) FROM (SELECT last_active_at FROM "
                                "program_progress WHERE last_active_at IS NOT NULL "
                                "GROUP BY plan_id, projects_completed HAVING COUNT(*) > 1)")
    assert repeated > 0 and tied > 0


def test_zero_to_six_attempts_per_learner_program(dataset: Path) -> None:
    rows = _rows(dataset, """
        SELECT (SELECT COUNT(*) FROM assessment_attempts a WHERE a.user_id = p.user_id
                AND a.program_key = p.program_key AND a.plan_id IS p.plan_id)
        FROM program_progress p""")
    assert {n for (n,) in rows} == set(range(7))


def test_plans_include_the_demo_plan_and_an_empty_plan(dataset: Path) -> None:
    plans = plan_ids(SPEC)
    assert plans[0] == DEMO_PLAN_ID and len(plans) == SPEC.plans + 1
    for table in NULLABLE:
        ((n,),) = _rows(dataset, f"SELECT COUNT(*) FROM {table} "
                                 f"WHERE plan_id = '{empty_plan_id(SPEC)}'")
        assert n == 0


def test_some_learners_belong_to_two_plans(dataset: Path) -> None:
    ((n,),) = _rows(dataset, "SELECT COUNT(*) FROM (SELECT user_id FROM learning_plan_progress "
                             "GROUP BY user_id HAVING COUNT(DISTINCT plan_id) > 1)")
    assert n > 0


def test_graduated_records_carry_graduation_and_completion(dataset: Path) -> None:
    rows = _rows(dataset, "SELECT graduated_at IS NOT NULL, completed_at IS NOT NULL, "
                          "completion_percentage FROM program_progress "
                          "WHERE enrollment_status = 'GRADUATED'")
    assert rows and all(r == (1, 1, 100.0) for r in rows)
    ((completed_not_graduated,),) = _rows(
        dataset, "SELECT COUNT(*) FROM program_progress WHERE completed_at IS NOT NULL "
                 "AND enrollment_status <> 'GRADUATED'")
    assert completed_not_graduated > 0


def test_keyset_pages_use_an_index(dataset: Path) -> None:
    plan = _rows(dataset, "EXPLAIN QUERY PLAN SELECT * FROM program_progress "
                          f"WHERE plan_id = '{DEMO_PLAN_ID}' AND (k_last_active, id) > ('a', 1) "
                          "ORDER BY k_last_active, id LIMIT 101")
    detail = " ".join(str(r[-1]) for r in plan)
    assert "USING INDEX ix_program_progress_k_last_active" in detail
    assert "TEMP B-TREE" not in detail
