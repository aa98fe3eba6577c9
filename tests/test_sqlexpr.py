"""The expression compiler: Postgres types, names and three-valued logic, per row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from legacy_bridge.errors import ColumnUnavailable, UnsupportedSql
from legacy_bridge.sqlexpr import Scope, identifier
from legacy_bridge.sqlmap import load_data_api
from support import MAPPINGS

API = load_data_api(MAPPINGS)
assert API is not None
ROSTER = API.tables["roster_v1"]
ROW = {"email": "Ana@Example.com", "first_name": "Ana", "last_seen": None,
       "enrolled_at": datetime(2025, 3, 1, 12, 0, tzinfo=UTC), "core_projects_passed": 3,
       "total_core_projects": 5, "enrollment_state": "enrolled"}


def value(condition: str, row: dict[str, Any] = ROW) -> Any:
    node = sqlglot.parse_one(f"SELECT {condition}", read="postgres")
    assert isinstance(node, exp.Select)
    return Scope(ROSTER).compile(node.expressions[0]).fn(row)


@pytest.mark.parametrize(("condition", "expected"), [
    ("core_projects_passed < total_core_projects", True),
    ("last_seen > '2025-01-01'", None),                      # null compares unknown
    ("last_seen > '2025-01-01' OR email = 'x'", None),
    ("last_seen > '2025-01-01' OR email LIKE 'Ana%'", True),  # true OR unknown
    ("last_seen > '2025-01-01' AND email = 'x'", False),     # false AND unknown
    ("NOT (last_seen > '2025-01-01')", None),
    ("last_seen IS NULL", True),
    ("enrolled_at::DATE = '2025-03-01'", True),
    ("enrolled_at BETWEEN '2025-01-01' AND '2025-12-31'", True),
    ("enrollment_state IN ('graduated', NULL)", None),       # no match, a null in the list
    ("enrollment_state IN ('enrolled', NULL)", True),
    ("email ILIKE 'ana@%'", True),
    ("email LIKE 'ana@%'", False),                           # LIKE is case-sensitive
    ("first_name LIKE 'A_a'", True),
    ("LOWER(email) = 'ana@example.com'", True),
])
def test_conditions_follow_postgres(condition: str, expected: bool | None) -> None:
    assert value(condition) is expected


@pytest.mark.parametrize(("expression", "expected"), [
    ("UPPER(first_name)", "ANA"),
    ("enrolled_at::DATE", datetime(2025, 3, 1).date()),
    ("core_projects_passed::TEXT", "3"),
    ("-2", -2),
])
def test_values_follow_postgres(expression: str, expected: Any) -> None:
    assert value(expression) == expected


@pytest.mark.parametrize(("expression", "error"), [
    ("enrolled_at > 5", UnsupportedSql),                 # cannot compare timestamp with integer
    ("last_seen > 'not a date'", UnsupportedSql),
    ("email AND first_name", UnsupportedSql),            # AND takes conditions
    ("nosuch = 1", UnsupportedSql),
    ("employee_id = '1'", ColumnUnavailable),            # the guide's gap, with its advice
    ("ABS(core_projects_passed)", UnsupportedSql),
    ("enrolled_at::BOOLEAN", UnsupportedSql),
])
def test_what_postgres_or_the_grammar_refuses_is_refused(expression: str,
                                                       error: type[Exception]) -> None:
    with pytest.raises(error):
        value(expression)


def test_unquoted_names_fold_to_lower_case_and_quoted_ones_do_not() -> None:
    unquoted = sqlglot.parse_one("SELECT EMAIL", read="postgres").expressions[0]
    quoted = sqlglot.parse_one('SELECT "EMAIL"', read="postgres").expressions[0]
    assert (identifier(unquoted), identifier(quoted)) == ("email", "EMAIL")


def test_a_compiled_expression_records_the_columns_it_reads() -> None:
    scope = Scope(ROSTER)
    node = sqlglot.parse_one("SELECT email = 'x' AND last_seen IS NULL", read="postgres")
    scope.compile(node.expressions[0])
    assert set(scope.read) == {"email", "last_seen"}
